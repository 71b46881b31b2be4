#!/usr/bin/env bash
# Issue 7's single device call: everything the CUDA backend still needs a GPU for, from the bundle of
# `npm run pack:gpu`, with all output under $OUT (at most 8 files come back). Prepare here first:
#   npm run pack:gpu      # .gpu-bundle/spectral-norm-gpu.tar.xz, about 26 MiB
# then on the lent machine, in one call (carry: [".gpu-bundle/spectral-norm-gpu.tar.xz"], timeout_s 600):
#   bash bench/gpu-run.sh
# Steps, each under its own time limit so one hang cannot eat the others (about 540 s in all, under the 600 s a
# command may run): 1 npm run test:gpu, 2 the workbench, 3 compute-sanitizer memcheck and racecheck over the
# workbench, 4 the benchmark against PyTorch, 5 ncu on the sweep and commit kernels. The bundle's addon is rebuilt
# there with cmake and nvcc when it does not load (other system libraries).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/sn-gpu-out}"
mkdir -p "$OUT"
work=/tmp/sn-gpu
rm -rf "$work" && mkdir -p "$work"
summary="$OUT/summary.log"
: >"$summary"
note() { echo "[$(date -u +%T)] $*" | tee -a "$summary"; }

tar -xJf .gpu-bundle/spectral-norm-gpu.tar.xz -C "$work" || { note "no bundle: run npm run pack:gpu and carry it"; exit 1; }
b="$work/spectral-norm-gpu"
{ nvidia-smi; nvcc --version | tail -2; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'; cat "$b/BUNDLE.json"; } >>"$summary" 2>&1
if ! "$b/run.sh" info 2>&1 | grep -q '"auto": "cuda"'; then
  note "the packed addon does not offer cuda here; rebuilding"
  "$b/run.sh" info >>"$summary" 2>&1
  (timeout 240 "$b/run.sh" rebuild >>"$summary" 2>&1) || note "rebuild failed"
fi
"$b/run.sh" info >>"$summary" 2>&1

step() {  # step NAME SECONDS LOG COMMAND...
  local name=$1 limit=$2 log=$3
  shift 3
  note "start $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$log" 2>&1
  note "end $name: exit $?"
}
step "test:gpu" 90 "$OUT/test-gpu.log" "$b/run.sh" test
step "workbench" 90 "$OUT/workbench.log" "$b/run.sh" workbench --out "$OUT"
export PATH="$b/node/bin:$PATH"
(
  cd "$b"
  step "memcheck" 100 "$OUT/sanitizer.log" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
    node dist/bench/cuda-workbench.js --quick --out /tmp/sn-sanitizer
  step "racecheck" 70 "$OUT/racecheck.log" compute-sanitizer --tool racecheck --error-exitcode 9 \
    node dist/bench/cuda-workbench.js --quick --out /tmp/sn-sanitizer
)
cat "$OUT/racecheck.log" >>"$OUT/sanitizer.log" && rm -f "$OUT/racecheck.log"
step "bench vs torch" 150 "$OUT/bench.log" "$b/run.sh" bench --out "$OUT"
(
  cd "$b"
  step "ncu" 60 "$OUT/ncu.txt" ncu --clock-control none -k 'regex:sweep_kernel|commit_kernel' --launch-skip 4 --launch-count 6 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    node dist/bench/cuda-profile-step.js
)
note "done; files: $(ls "$OUT" | tr '\n' ' ')"
