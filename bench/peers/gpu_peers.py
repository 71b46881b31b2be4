#!/usr/bin/env python3
"""The GPU peers of `npm run bench:gpu`, timed on the same GPU in the same run (float32, one SN step of every layer).

torch-eager: torch.nn.utils.parametrizations.spectral_norm in training mode, reading `module.weight` of every layer
  (k power iterations and W/sigma, as a forward pass pays for them); CUDA events around one step.
torch-graph: the same step captured once as a CUDA graph (torch.cuda.CUDAGraph) and replayed; CUDA events around one
  replay. The strongest PyTorch baseline for a fixed chain of small launches.
jax-jit: the same power iteration and division (PyTorch's order: u = normalize(W v), v = normalize(W^T u),
  sigma = u . W v) over all layers in one jitted function, u and v carried from step to step. JAX exposes no CUDA
  events: 20 steps are dispatched back to back and waited for once, on the host clock; the step time is that over 20,
  the median of 9 such runs (the GPU-bound steady state).

Each: the median of 31 samples after 10 warm-up steps. Usage:
  python3 bench/peers/gpu_peers.py torch|jax bench/networks.json [workload ...]
Prints one JSON object; a peer that cannot run is reported with the reason.
"""
import json
import os
import statistics
import sys
import time

EPS = 1e-12
WARMUP = 10
SAMPLES = 31


def workloads(path, names):
    with open(path) as f:
        spec = json.load(f)
    result = [(n["name"], [l["shape"] for l in n["layers"]]) for n in spec["networks"]]
    for s in spec["synthetic"]:
        if s["name"] in ("many-small", "large-square-gpu"):
            result.append((s["name"], [s["shape"]] * s.get("count", 1)))
    return [w for w in result if not names or w[0] in names]


def run_torch(work):
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    device = torch.device("cuda")

    def module_for(shape):
        if len(shape) == 4:
            return torch.nn.Conv2d(shape[1], shape[0], (shape[2], shape[3]), bias=False)
        if len(shape) == 2:
            return torch.nn.Linear(shape[1], shape[0], bias=False)
        raise ValueError(f"unsupported shape {shape}")

    def events_ms(fn):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop)

    results = []
    for name, shapes in work:
        for k in (1, 5):
            torch.manual_seed(0)
            modules = [spectral_norm(module_for(s), n_power_iterations=k).to(device).train() for s in shapes]

            def step():
                return [m.weight for m in modules]

            with torch.no_grad():
                for _ in range(WARMUP):
                    step()
                torch.cuda.synchronize()
                eager = statistics.median(events_ms(step) for _ in range(SAMPLES))
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(3):
                        step()
                torch.cuda.current_stream().wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    outputs = step()  # noqa: F841 - kept alive with the graph's memory pool
                for _ in range(WARMUP):
                    graph.replay()
                torch.cuda.synchronize()
                replay = statistics.median(events_ms(graph.replay) for _ in range(SAMPLES))
            results.append({"workload": name, "iterations": k, "eagerMs": eager, "graphMs": replay})
            del modules, graph, outputs
            torch.cuda.empty_cache()
    return {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "results": results}


def run_jax(work):
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax
    import jax.numpy as jnp

    def normalize(x):
        return x / jnp.maximum(jnp.linalg.norm(x), EPS)

    def make_step(k):
        def step(weights, us, vs):
            outs, new_us, new_vs = [], [], []
            for w, u, v in zip(weights, us, vs):
                m = w.reshape(w.shape[0], -1)
                for _ in range(k):
                    u = normalize(m @ v)
                    v = normalize(m.T @ u)
                sigma = u @ (m @ v)
                outs.append(w / sigma)
                new_us.append(u)
                new_vs.append(v)
            return outs, new_us, new_vs

        return jax.jit(step)

    results = []
    key = jax.random.PRNGKey(0)
    for name, shapes in work:
        weights, us, vs = [], [], []
        for s in shapes:
            key, a, b, c = jax.random.split(key, 4)
            cols = 1
            for d in s[1:]:
                cols *= d
            weights.append(jax.random.normal(a, s, jnp.float32) * 0.05)
            us.append(normalize(jax.random.normal(b, (s[0],), jnp.float32)))
            vs.append(normalize(jax.random.normal(c, (cols,), jnp.float32)))
        for k in (1, 5):
            step = make_step(k)
            state = (us, vs)
            for _ in range(WARMUP):
                outs, *state = step(weights, *state)
            jax.block_until_ready((outs, state))
            runs = []
            for _ in range(9):
                start = time.perf_counter()
                for _ in range(20):
                    outs, *state = step(weights, *state)
                jax.block_until_ready((outs, state))
                runs.append((time.perf_counter() - start) * 1e3 / 20)
            results.append({"workload": name, "iterations": k, "jitMs": statistics.median(runs)})
    return {"jax": jax.__version__, "device": str(jax.devices()[0]), "results": results}


def main():
    peer, path, names = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        work = workloads(path, names)
        out = run_torch(work) if peer == "torch" else run_jax(work)
    except Exception as e:  # reported, not raised: the benchmark goes on without this peer
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
