#!/usr/bin/env bash
# The GPU bundle's entry point (made by `npm run pack:gpu`): runs everything with the bundled Node, so the host needs
# no Node.js; the GPU steps need a CUDA driver, the benchmark also python3 with CUDA-enabled torch.
#   ./run.sh info        the backends this host offers, and why one is missing
#   ./run.sh test        the whole mocha suite with the cuda backend required (npm run test:gpu)
#   ./run.sh test-cpu    the whole suite on the backends this host has (the CPU fallback without a GPU)
#   ./run.sh workbench   the CUDA kernel workbench (extra arguments are passed on, e.g. --out DIR --quick)
#   ./run.sh bench       the GPU benchmark (npm run bench:gpu): ours, PyTorch eager and CUDA graph, JAX, host arrays (e.g. --out DIR --tune)
#   ./run.sh profile     a few large steps, for ncu
#   ./run.sh rebuild     rebuilds the addon here with cmake and nvcc, when the packed one does not load
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PATH="$here/node/bin:$PATH"
cd "$here"
mocha=(node node_modules/mocha/bin/mocha.js)
case "${1:-info}" in
  info) node -e "console.log(JSON.stringify(require('./dist/lib').backendInfo(), null, 2))" ;;
  test) SN_TEST_BACKENDS=cuda SN_REQUIRE_CUDA=1 "${mocha[@]}" ;;
  test-cpu) "${mocha[@]}" ;;
  workbench) node dist/bench/cuda-workbench.js "${@:2}" ;;
  bench) node dist/bench/gpu-bench.js "${@:2}" ;;
  profile) node dist/bench/cuda-profile-step.js "${@:2}" ;;
  rebuild)
    cmake -S . -B build/cmake -G Ninja -DCMAKE_BUILD_TYPE=Release -DSN_CUDA=ON \
      -DCMAKE_JS_INC="$here/node/include/node" -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$here/build/Release"
    cmake --build build/cmake
    ;;
  *) echo "usage: $0 info|test|test-cpu|workbench|bench|profile|rebuild" >&2; exit 2 ;;
esac
