"""The FFT method (Sedghi et al. 2019) in numpy, the peer of `npm run bench:conv`.

Reads a JSON list of layers on stdin: {"file": float32 kernel in oihw, "shape": [cout, cin, kh, kw],
"inputSize": [h, w], "repeats": n}. For each, σ of the circular convolution on an h×w input: a batched fft2 of the
kernel zero-filled to h×w, then np.linalg.norm(·, 2) of the cout×cin matrix at every frequency, the largest of them.
Prints one JSON line: numpy's version and, per layer, σ and the median wall time of `repeats` runs in ms.
"""
import json
import sys
import time

try:
    import numpy as np
except ImportError:
    print(json.dumps({"unavailable": "numpy is not installed"}))
    sys.exit(0)


def sigma(kernel, h, w):
    spectrum = np.fft.fft2(kernel, s=(h, w), axes=(2, 3))  # [cout, cin, h, w]
    per_frequency = spectrum.transpose(2, 3, 0, 1)  # [h, w, cout, cin]
    return float(np.linalg.norm(per_frequency, 2, axis=(-2, -1)).max())


def main():
    layers = json.load(sys.stdin)
    out = []
    for layer in layers:
        kernel = np.fromfile(layer["file"], dtype=np.float32).astype(np.float64).reshape(layer["shape"])
        h, w = layer["inputSize"]
        times = []
        value = None
        for _ in range(layer["repeats"]):
            start = time.perf_counter()
            value = sigma(kernel, h, w)
            times.append((time.perf_counter() - start) * 1e3)
        times.sort()
        out.append({"sigma": value, "medianMs": times[len(times) // 2], "minMs": times[0], "samples": len(times)})
    print(json.dumps({"numpy": np.__version__, "layers": out}))


main()
