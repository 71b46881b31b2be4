#pragma once
// The SIMD kernels of the CPU backend: the passes over W that dominate the run time. Each is compiled once per
// instruction set (kernels_avx512.cpp, kernels_avx2.cpp, kernels_baseline.cpp) and picked at run time by what the
// running CPU supports.
//
// Two precisions (PowerOptions::precision). The float64 kernels accumulate every product in double, whatever the
// weight's dtype. The mixed kernels (float32 weights only) multiply in float32 on twice the lanes, each lane summing
// at most 16 products in float32 before the partial joins a double accumulator; their float32 operands are scaled by
// powers of two so that no partial overflows or underflows before σ itself would (kernels_mixed.h).
#include <cstddef>

#include "../common/matrix_layout.h"

namespace sn::kernels {

template <typename T>
struct Table {
  // d[r - r0] = M_r · x for the rows r in [r0, r1).
  void (*matvec_rows)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const double* x, double* d);
  // t += Σ_{r in [r0, r1)} c[r - r0] · M_r, that is Mᵀc restricted to those rows.
  void (*accumulate_rows)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const double* c, double* t);
  // The fused sweep of one power iteration: d = M x and t += Mᵀd over the rows [r0, r1), reading each tile of W
  // from memory once (the second use hits cache).
  void (*sweep_rows)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const double* x, double* d,
                     double* t);
  // The same three in mixed precision; nullptr for double weights. x is float32 with max |x_i| ≤ 1/4 (the caller
  // scales it by a power of two and unscales d and t); c and d stay double. scratch holds
  // mixed_scratch_floats(layout, r1 - r0) floats, private to the call.
  void (*matvec_rows_mixed)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const float* x, double* d,
                            float* scratch);
  void (*accumulate_rows_mixed)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const double* c,
                                double* t, float* scratch);
  void (*sweep_rows_mixed)(const T* w, const MatrixLayout& layout, size_t r0, size_t r1, const float* x, double* d,
                           double* t, float* scratch);
  // out[i] = w[i] / sigma, correctly rounded in T. out may equal w. stream: write with non-temporal stores, for
  // an out that is not w and too large to stay in cache.
  void (*divide)(const T* w, T* out, size_t n, T sigma, bool stream);
  // Σ w[i]² in double.
  double (*sum_squares)(const T* w, size_t n);
  // Reads w[0..n) with loads and adds only and returns a value depending on each element: the bandwidth probe's loop.
  double (*read_probe)(const T* w, size_t n);
};

// The scratch a mixed kernel call over `rows` rows needs, in floats.
inline size_t mixed_scratch_floats(const MatrixLayout& layout, size_t rows) { return rows + layout.inner; }

const Table<float>& table_f32();
const Table<double>& table_f64();

template <typename T>
const Table<T>& table();
template <>
inline const Table<float>& table<float>() {
  return table_f32();
}
template <>
inline const Table<double>& table<double>() {
  return table_f64();
}

// The variant the running CPU selected: "avx512", "avx2" or "sse2" on x86-64; "scalar" elsewhere, which names the
// baseline build for the target's default instruction set (GCC still lowers its vector code to that target's SIMD,
// NEON on AArch64, where it has one).
const char* simd_level();

}  // namespace sn::kernels
