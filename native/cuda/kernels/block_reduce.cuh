#pragma once
// Block-level reductions (as CUB's BlockReduce, with a fixed order): warp and block sums and maxima, and the
// overflow-safe ‖x‖₂ every norm of the power iteration falls back on. Each gives the same bits in every thread, run to
// run. Part of power_kernels.cu (included there only).
#include <cfloat>
#include <cstdint>

#include "common.cuh"

namespace sn::cuda {
namespace {

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ double warp_max(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The same bits in every thread: the warps' sums added in warp order. `scratch` holds kWarps doubles.
__device__ double block_sum(double v, double* scratch) {
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  double s = 0;
  for (int w = 0; w < kWarps; ++w) s += scratch[w];
  return s;
}

__device__ double block_max(double v, double* scratch) {
  v = warp_max(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  double m = 0;
  for (int w = 0; w < kWarps; ++w) m = fmax(m, scratch[w]);
  return m;
}

// ‖(value(0), …, value(n−1))‖₂ as the CPU's norm2_from: the plain sum of squares when it is safely in range, else
// rescaled by max |x_i|. NaN when some value is NaN or ±Inf. Every thread of the block calls it and gets the same bits.
template <typename Value>
__device__ double block_norm2(uint64_t n, Value value, double* scratch) {
  double s = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double a = value(i);
    s += a * a;
  }
  s = block_sum(s, scratch);
  if (isfinite(s) && s >= kSafeMin) return sqrt(s);
  double m = 0;
  int bad = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double a = fabs(value(i));
    if (!(a <= DBL_MAX)) bad = 1;
    else m = fmax(m, a);
  }
  if (__syncthreads_or(bad)) return nan("");
  m = block_max(m, scratch);
  if (m == 0) return 0;
  s = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double y = value(i) / m;
    s += y * y;
  }
  return m * sqrt(block_sum(s, scratch));
}

// The same norm from the partial sums of squares of `count` pieces (written by earlier blocks), summed in piece
// order; only when that sum is out of the safe range does it take the exact pass over the values. Same bits in every
// thread, and in every block that calls it for the same pieces.
template <typename Value>
__device__ double norm_from_stats(const double* stats, uint32_t count, uint64_t n, Value value, double* scratch) {
  double s = 0;
  for (uint32_t k = 0; k < count; ++k) s += load_global(stats + k);
  if (isfinite(s) && s >= kSafeMin) return sqrt(s);
  return block_norm2(n, value, scratch);
}

}  // namespace

}  // namespace sn::cuda
