#!/usr/bin/env bash
# The compile-time resource report of the CUDA kernels: registers, shared memory, stack and spills per kernel, for
# every architecture the build pins (sm_80, sm_90), with a summary table first. No GPU needed.
# Usage: bench/ptxas-report.sh [output file]   (default bench/results/ptxas-<date>.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/results/ptxas-$(date -u +%F).txt}"
nvcc_bin="${CUDACXX:-nvcc}"
raw="$(mktemp)"
trap 'rm -f "$raw"' EXIT
command="$nvcc_bin -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -Xptxas -v -c native/cuda/power_kernels.cu"
$command -o /dev/null >"$raw" 2>&1
{
  echo "# ptxas -v for native/cuda/power_kernels.cu"
  echo "# date: $(date -u +%FT%TZ)  machine: $(uname -n) $(uname -m)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo -)"
  echo "# nvcc: $("$nvcc_bin" --version | tail -1)"
  echo "# command: $command"
  echo "# The tiled sweep is capped at 64 registers (4 blocks of 256 threads per SM) for 1 or 2 float32 units per thread,"
  echo "# 85 for 2 float64 units, 128 for 4 units (__launch_bounds__); its dynamic shared memory is the cp.async ring."
  echo
  echo "## summary: arch, kernel, registers, stack frame, spill stores/loads, static shared memory"
  python3 - "$raw" <<'PY'
import re, subprocess, sys
cur = stack = None
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\S+)' for '(sm_\d+)'", line)
    if m:
        cur = m.groups()
        continue
    m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
    if m:
        stack = m.groups()
        continue
    m = re.search(r"Used (\d+) registers", line)
    if m and cur:
        name = subprocess.run(["c++filt", cur[0]], capture_output=True, text=True).stdout.strip()
        name = re.sub(r"\(.*", "", name.replace("(anonymous namespace)::", "").replace("void ", "").replace("sn::cuda::", ""))
        smem = re.search(r"(\d+) bytes smem", line)
        print(f"{cur[1]}  {name:46s} {m.group(1):>4} regs  {stack[0]:>3} B stack  spills {stack[1]}/{stack[2]} B  "
              f"{smem.group(1) if smem else 0} B static smem")
        cur = None
PY
  echo
  echo "## ptxas output"
  c++filt <"$raw" | sed -E 's/^ptxas info *: //'
} >"$out"
echo "wrote $out"
grep -c "spills 0/0" "$out" | xargs -I{} echo "{} kernels without spills"
grep "spills [1-9]" "$out" || true
