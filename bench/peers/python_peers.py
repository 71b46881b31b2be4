"""The Python peers of `npm run bench`, timed in the same benchmark run.

numpy: the power iteration a numpy user would write, with BLAS gemv (OpenBLAS) and sigma from the last norm:
(2k + 2)·|W| bytes per step. torch: torch.nn.utils.parametrizations.spectral_norm itself, timing reads of the
parametrized weight in training mode, the way a training step pays for it: (2k + 3)·|W| bytes.

Reads a JSON job on stdin ({"contender", "workloads", "budget_ms", "slow_ms", "min_samples", "max_samples"}) and writes one JSON
object on stdout. A peer that cannot be imported is reported with the reason, not raised.
"""
import json
import os
import platform
import sys
import time

EPS = 1e-12


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def elapsed_ms(step):
    t = time.perf_counter()
    step()
    return (time.perf_counter() - t) * 1e3


def measure(step, job):
    # The same plan as the Node side (bench/timing.ts): a warm-up (first-touch allocation, thread pools, lazy
    # initialisation), then as many samples as the budget allows, or the first timing alone when a step takes seconds.
    step()
    first = elapsed_ms(step)
    if first > job["slow_ms"]:
        times = [first]
        n = 1
    else:
        n = int(max(job["min_samples"], min(job["max_samples"], job["budget_ms"] // max(first, 1e-3))))
        times = [elapsed_ms(step) for _ in range(n)]
    return {"medianMs": median(times), "minMs": min(times), "maxMs": max(times), "samples": n}


def random_weights(np, matrices):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal((r, c), dtype=np.float32) * np.float32((2.0 / c) ** 0.5)) for r, c in matrices]


def numpy_peer(job):
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # older numpy: no dict mode
        blas_name = "unknown"
    info = {"version": np.__version__, "blas": blas_name, "python": sys.executable}
    results = {}
    for w in job["workloads"]:
        weights = random_weights(np, w["matrices"])
        layers = [{"w": m, "v": np.full(m.shape[1], m.shape[1] ** -0.5, dtype=np.float32),
                   "out": np.empty_like(m)} for m in weights]
        k = w["iterations"]

        def step():
            for layer in layers:
                m, v = layer["w"], layer["v"]
                for _ in range(k):
                    u = m @ v
                    u /= max(float(np.linalg.norm(u)), EPS)
                    t = m.T @ u
                    n = float(np.linalg.norm(t))
                    v = t / max(n, EPS)
                layer["v"] = v
                np.divide(m, np.float32(n), out=layer["out"])  # sigma = u·(W v) = ‖Wᵀu‖

        results[w["name"]] = measure(step, job)
    return info, results


def torch_peer(job):
    import numpy as np
    import torch
    from torch.nn.utils.parametrizations import spectral_norm

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    info = {"version": torch.__version__, "threads": torch.get_num_threads(), "python": sys.executable}
    results = {}
    for w in job["workloads"]:
        weights = random_weights(np, w["matrices"])
        modules = []
        for m, shape in zip(weights, w["shapes"]):
            module = torch.nn.Module()
            module.weight = torch.nn.Parameter(torch.from_numpy(m.reshape(shape)))
            modules.append(spectral_norm(module, n_power_iterations=w["iterations"], eps=EPS).train())

        def step():
            for module in modules:
                module.weight  # one power-iteration update and W/σ, as in a training forward pass

        results[w["name"]] = measure(step, job)
    return info, results


PEERS = {"numpy": numpy_peer, "torch": torch_peer}


def main():
    job = json.load(sys.stdin)
    name = job["contender"]
    report = {"contender": name, "python": platform.python_version(), "executable": sys.executable}
    try:
        info, results = PEERS[name](job)
        report.update(info=info, results=results)
    except ImportError as error:
        report["unavailable"] = f"{sys.executable} cannot import it ({error})"
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
