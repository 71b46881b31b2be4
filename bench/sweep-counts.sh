#!/usr/bin/env bash
# Instruction counts of one k=1 sweep on one thread (callgrind), this library's kernels against numpy's W@v + W.T@u
# (OpenBLAS sgemv, one thread, Python's call overhead included), per element of W, for each shape and SIMD path
# given: (count at 21 reps - count at 11) / 10, past the first calls' one-time costs. Counts do not depend on the
# machine's load, so this is how kernel changes are compared on a shared VM. Valgrind emulates no AVX-512: the
# avx512 path cannot be counted here (it runs as avx2 under valgrind), so the default paths are avx2 and sse2.
#
#   bash bench/sweep-counts.sh [SHAPES...]      e.g. 512x4608 1024x9216; SN_PATHS="avx2 sse2", SN_PRECISION=float64,
#   SN_KERNEL_SOURCES=<another checkout>/native/cpu counts that tree's kernels (a before/after comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(64x576 512x4608 1024x9216 4096x4096)
paths=${SN_PATHS:-avx2 sse2}
src=${SN_KERNEL_SOURCES:-native/cpu}
out=build-workbench/$(printf %s "$src" | tr -c 'A-Za-z0-9\n' _)
mkdir -p "$out"
flags=(-O3 -fno-math-errno -std=c++17 -DSN_X86_KERNELS "-I$src")  # as CMakeLists.txt builds sn_cpu
g++ "${flags[@]}" -mavx2 -mfma -c "$src/kernels_avx2.cpp" -o "$out/kernels_avx2.o"
g++ "${flags[@]}" -mavx512f -mavx512dq -mavx512vl -mavx512bw -mavx2 -mfma -c "$src/kernels_avx512.cpp" \
  -o "$out/kernels_avx512.o"
g++ "${flags[@]}" -c "$src/kernels_baseline.cpp" -o "$out/kernels_baseline.o"
g++ "${flags[@]}" -c "$src/kernels_dispatch.cpp" -o "$out/kernels_dispatch.o"
g++ "${flags[@]}" bench/native/sweep-workbench.cpp "$out"/kernels_*.o -o "$out/sweep-workbench"

instructions() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
per_element() { python3 -c "print(f'{($2 - $1) / 10 / $3:.3f}')"; }
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)
numpy_sweep='import sys, numpy as np
r, c, n = map(int, sys.argv[1:])
W = np.random.default_rng(1).standard_normal((r, c), dtype=np.float32); v = np.ones(c, np.float32); u = np.ones(r, np.float32)
for _ in range(n): W @ v; W.T @ u'
echo "instructions per element of W for one k=1 sweep, one thread (callgrind: (Ir at 21 reps - Ir at 11) / 10); kernels: $src"
for shape in "${shapes[@]}"; do
  rows=${shape%x*} cols=${shape#*x}
  line="$shape:"
  for path in $paths; do
    a=$(SN_SIMD=$path instructions "$out/sweep-workbench" "$rows" "$cols" 11 "${SN_PRECISION:-mixed}")
    b=$(SN_SIMD=$path instructions "$out/sweep-workbench" "$rows" "$cols" 21 "${SN_PRECISION:-mixed}")
    line="$line  $path ${SN_PRECISION:-mixed} $(per_element "$a" "$b" $((rows * cols)))"
  done
  if [ -n "$python" ] && "$python" -c 'import numpy' 2>/dev/null; then
    for core in Haswell; do
      # Python's own counts wander by ~10^4 run to run (a fixed hash seed and 100 sweeps' difference keep that small)
      a=$(PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$core instructions "$python" -c "$numpy_sweep" "$rows" "$cols" 50)
      b=$(PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=$core instructions "$python" -c "$numpy_sweep" "$rows" "$cols" 150)
      line="$line  numpy (OpenBLAS $core sgemv) $(per_element "$a" "$b" $((rows * cols * 10)))"
    done
  fi
  echo "$line"
done
