#!/usr/bin/env python3
"""PyTorch's torch.nn.utils.parametrizations.spectral_norm on CUDA tensors, timed with CUDA events.

One SN step of a network = reading `module.weight` of every layer in training mode: k power iterations and W/sigma,
as PyTorch does in a forward pass. Prints one JSON object: the median milliseconds per step after warm-up, for each
workload and iteration count. Usage: python3 bench/torch_sn.py bench/networks.json [--quick]
"""
import json
import statistics
import sys

import torch
from torch.nn.utils.parametrizations import spectral_norm


def workloads(path, quick):
    with open(path) as f:
        spec = json.load(f)
    result = [(n["name"], [l["shape"] for l in n["layers"]]) for n in spec["networks"]]
    for s in spec["synthetic"]:
        if s["name"] in ("many-small", "large-square-gpu"):
            result.append((s["name"], [s["shape"]] * s.get("count", 1)))
    return result[:1] if quick else result


def module_for(shape):
    # Any module whose weight has this shape; dim 0 as in networks.json.
    if len(shape) == 4:
        return torch.nn.Conv2d(shape[1], shape[0], (shape[2], shape[3]), bias=False)
    if len(shape) == 2:
        return torch.nn.Linear(shape[1], shape[0], bias=False)
    raise ValueError(f"unsupported shape {shape}")


def time_steps(modules, warmup=10, samples=31):
    def step():
        for m in modules:
            m.weight  # noqa: B018 - the parametrization runs here
    with torch.no_grad():
        for _ in range(warmup):
            step()
        torch.cuda.synchronize()
        times = []
        for _ in range(samples):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main():
    path = sys.argv[1]
    quick = "--quick" in sys.argv
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch sees no CUDA device", "torch": torch.__version__}))
        sys.exit(1)
    device = torch.device("cuda")
    results = []
    for name, shapes in workloads(path, quick):
        for k in (1, 5):
            torch.manual_seed(0)
            modules = [spectral_norm(module_for(s), n_power_iterations=k).to(device).train() for s in shapes]
            results.append({"workload": name, "iterations": k, "medianMs": time_steps(modules)})
            del modules
            torch.cuda.empty_cache()
    print(json.dumps({
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "timing": "CUDA events around one step of every layer, median of 31 after 10 warm-up steps, float32",
        "results": results,
    }))


if __name__ == "__main__":
    main()
