#!/usr/bin/env bash
# The compile-time resource report of the CUDA kernels: registers, shared memory, stack and spills per kernel, for
# every architecture the build pins (sm_80, sm_90). No GPU needed. Usage: bench/ptxas-report.sh [output file]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/results/ptxas-$(date -u +%F).txt}"
nvcc_bin="${CUDACXX:-nvcc}"
{
  echo "# ptxas -v for native/cuda/power_kernels.cu"
  echo "# date: $(date -u +%FT%TZ)  machine: $(uname -n) $(uname -m)"
  echo "# nvcc: $("$nvcc_bin" --version | tail -1)"
  echo "# command: $nvcc_bin -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Xptxas -v -c native/cuda/power_kernels.cu"
  echo
  "$nvcc_bin" -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Xptxas -v \
    -c native/cuda/power_kernels.cu -o /dev/null 2>&1 |
    c++filt |
    sed -E 's/^ptxas info *: //'
} > "$out"
echo "wrote $out"
