#!/usr/bin/env bash
# Issue 11's single device call: everything the CUDA backend needs a GPU for, from the bundle of `npm run pack:gpu`,
# with all output under $OUT. Prepare here first:
#   npm run pack:gpu      # .gpu-bundle/spectral-norm-gpu.tar.xz
# then on the lent machine, in one call (carry: [".gpu-bundle/spectral-norm-gpu.tar.xz"], timeout_s 540):
#   bash bench/gpu-run.sh
# Steps, each under its own time limit so one hang cannot eat the others (about 7 minutes in all, under the 8 the
# issue allows): 1 npm run test:gpu (the whole suite on cuda), 2 the kernel workbench, 3 compute-sanitizer memcheck
# with --leak-check full, and racecheck, over the quick workbench, 4 npm run bench:gpu with the tuning variants
# (PyTorch eager and CUDA graph, JAX, copy and read bandwidth, issue 12's host-array table, results JSON), 5 ncu on
# the sweep, reduction, finish and commit kernels. The summary, printed last, is what the reply carries.
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
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())'; cat "$b/BUNDLE.json"; } >>"$summary" 2>&1
cuda_ok() { (cd "$b" && node/bin/node -e "process.exit(require('./dist/lib').backendInfo().cuda.available ? 0 : 1)"); }
if ! cuda_ok; then
  note "the packed addon does not offer cuda here; rebuilding"
  "$b/run.sh" info >>"$summary" 2>&1
  (timeout 200 "$b/run.sh" rebuild >>"$summary" 2>&1) || note "rebuild failed"
fi
"$b/run.sh" info >>"$OUT/info.json" 2>&1

step() {  # step NAME SECONDS LOG COMMAND...
  local name=$1 limit=$2 log=$3
  shift 3
  note "start $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$log" 2>&1
  note "end $name: exit $? $(grep -E 'passing|failing|checks passed|ERROR SUMMARY|LEAK SUMMARY|Leaked' "$log" | tr '\n' ' ' | cut -c1-300)"
}
step "test:gpu" 85 "$OUT/test-gpu.log" "$b/run.sh" test
step "workbench" 45 "$OUT/workbench.log" "$b/run.sh" workbench --out "$OUT"
export PATH="$b/node/bin:$PATH"
(
  cd "$b"
  step "memcheck" 80 "$OUT/memcheck.log" compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
    node dist/bench/cuda-workbench.js --quick --out /tmp/sn-sanitizer
  step "racecheck" 50 "$OUT/racecheck.log" compute-sanitizer --tool racecheck --racecheck-report hazard --error-exitcode 9 \
    node dist/bench/cuda-workbench.js --quick --out /tmp/sn-sanitizer
)
step "bench:gpu" 135 "$OUT/bench.log" "$b/run.sh" bench --out "$OUT" --tune --peer-timeout 45
(
  cd "$b"
  step "ncu" 45 "$OUT/ncu.txt" ncu --clock-control none -k 'regex:sweep_tiled_kernel|sweep_general_kernel|reduce_kernel|finish_kernel|commit_kernel' \
    --launch-count 14 --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    node dist/bench/cuda-profile-step.js
)
note "done; files: $(ls "$OUT" | tr '\n' ' ')"
echo; tail -n 45 "$OUT/bench.log"; echo; cat "$summary"
