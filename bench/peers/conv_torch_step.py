"""PyTorch's side of the conv-operator normalizer step in `npm run bench:conv`: one conv2d and one conv_transpose2d
of the layer on one image, the work of one power iteration through the operator (what real SN does per step).

Reads a JSON list of layers on stdin: {"file": float32 kernel in oihw, "shape": [cout, cin, kh, kw],
"inputSize": [h, w], "stride": s, "padding": p, "repeats": n}. Prints one JSON line: torch's version, its threads
and, per layer, the median and minimum wall time in ms.
"""
import json
import sys
import time

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as error:
    print(json.dumps({"unavailable": f"cannot import torch: {error}"}))
    sys.exit(0)


def main():
    layers = json.load(sys.stdin)
    out = []
    with torch.no_grad():
        for layer in layers:
            cout, cin, kh, kw = layer["shape"]
            h, w = layer["inputSize"]
            s, p = layer["stride"], layer["padding"]
            weight = torch.from_numpy(np.fromfile(layer["file"], dtype=np.float32).reshape(layer["shape"]))
            x = torch.randn(1, cin, h, w)
            # output_padding makes the transpose map back onto the input's h×w, as the adjoint of a strided conv does.
            pad = ((h + 2 * p - kh) % s, (w + 2 * p - kw) % s)

            def step():
                y = F.conv2d(x, weight, stride=s, padding=p)
                return F.conv_transpose2d(y, weight, stride=s, padding=p, output_padding=pad)

            assert step().shape == x.shape
            for _ in range(3):
                step()
            times = []
            for _ in range(layer["repeats"]):
                start = time.perf_counter()
                step()
                times.append((time.perf_counter() - start) * 1e3)
            times.sort()
            out.append({"medianMs": times[len(times) // 2], "minMs": times[0], "samples": len(times)})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "layers": out}))


main()
