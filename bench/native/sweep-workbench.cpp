// The CPU sweep's workbench: one k=1 sweep (d = W x, t = Wᵀd) of a rows×cols float32 layer on one thread, through
// the kernel table the running CPU selects (SN_SIMD caps it), `reps` times. bench/sweep-counts.sh runs it under
// callgrind at 1 and 11 reps, so the difference over 10 is one sweep's instruction count, free of setup; its own
// timing (the best of reps) is for interleaved A/B runs of two builds on a quiet core.
//
//   sweep-workbench ROWS COLS REPS [mixed|float64]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ROWS COLS REPS [mixed|float64]\n", argv[0]);
    return 2;
  }
  const size_t rows = std::strtoul(argv[1], nullptr, 10), cols = std::strtoul(argv[2], nullptr, 10);
  const int reps = std::atoi(argv[3]);
  const bool float64 = argc > 4 && std::strcmp(argv[4], "float64") == 0;
  const sn::MatrixLayout layout{1, rows, cols};
  std::vector<float> w(rows * cols), x(cols), scratch(sn::kernels::mixed_scratch_floats(layout, rows));
  std::vector<double> xd(cols), d(rows), t(cols);
  unsigned state = 1;  // a fixed LCG: the same weights in every build compared
  for (float& a : w) {
    state = state * 1664525u + 1013904223u;
    a = float(int(state >> 9) - (1 << 22)) / float(1 << 22);
  }
  for (size_t i = 0; i < cols; ++i) xd[i] = x[i] = 0.2f * float(i % 7) / 7;  // within the mixed kernels' |x| ≤ 1/4
  const auto& k = sn::kernels::table_f32();
  double check = 0, best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    std::fill(t.begin(), t.end(), 0.0);
    if (float64) {
      k.sweep_rows(w.data(), layout, 0, rows, xd.data(), d.data(), t.data());
    } else {
      k.sweep_rows_mixed(w.data(), layout, 0, rows, x.data(), d.data(), t.data(), scratch.data());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = seconds < best ? seconds : best;
    check += d[rows / 2] + t[cols / 3];
  }
  std::printf("simd=%s %zux%zu %s: best of %d sweeps %.1f us, %.2f G elements/s (check %.17g)\n",
              sn::kernels::simd_level(), rows, cols, float64 ? "float64" : "mixed", reps, best * 1e6,
              double(rows * cols) / best * 1e-9, check);
}
