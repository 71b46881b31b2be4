#pragma once
// The general sweep: d = M x and the partial sums of Mᵀd for a range of rows, one block per SweepItem
// (batch_plan.h, SweepKind::kGeneral), for any shape: rows wider than a cluster's registers hold, and matrices read in
// place with strided rows (dim ≠ 0). A warp computes a row's d; the block then adds a group of 32 rows' d·W into its
// partial slot while the rows are still in L1/L2 (the partial is read and written once per group). Sums in float64
// under either precision. Also every 1-D weight's norm, in the call's first sweep. Part of power_kernels.cu (included
// there only).
#include "block_reduce.cuh"
#include "common.cuh"

namespace sn::cuda {
namespace {

// Rows whose d the sweep computes before one pass over their columns accumulates Mᵀd.
constexpr int kRowsPerGroup = 32;

// Element (r, c) of the layer's matrix lives at w[column_base(c) + r·inner].
template <typename T>
__device__ __forceinline__ uint64_t column_base(const DeviceLayer<T>& L, uint64_t c) {
  if (L.outer == 1) return c;
  const uint64_t o = c / L.inner;
  return o * L.rows * L.inner + (c - o * L.inner);
}

// M_r · x for one row, by one warp; every lane gets the row's d. X is the double x or the start vector v.
template <typename T, typename X>
__device__ double row_dot(const DeviceLayer<T>& L, uint64_t r, const X* x) {
  const int lane = threadIdx.x & 31;
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  if (L.outer == 1) {
    const T* row = L.w + r * L.inner;
    uint64_t c = lane;
    for (; c + 96 < L.cols; c += 128) {  // four independent sums in flight per lane
      a0 += static_cast<double>(row[c]) * static_cast<double>(x[c]);
      a1 += static_cast<double>(row[c + 32]) * static_cast<double>(x[c + 32]);
      a2 += static_cast<double>(row[c + 64]) * static_cast<double>(x[c + 64]);
      a3 += static_cast<double>(row[c + 96]) * static_cast<double>(x[c + 96]);
    }
    for (; c < L.cols; c += 32) a0 += static_cast<double>(row[c]) * static_cast<double>(x[c]);
  } else {
    for (uint64_t c = lane; c < L.cols; c += 32) {
      a0 += static_cast<double>(L.w[column_base(L, c) + r * L.inner]) * static_cast<double>(x[c]);
    }
  }
  return warp_sum((a0 + a1) + (a2 + a3));
}

// A 1-D weight: σ = ‖W‖, its status, and nothing more to do in this call.
template <typename T>
__device__ void vector_norm(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags, double eps,
                            double* scratch) {
  const double sigma = block_norm2(
      L.size, [&](uint64_t i) { return load_global(L.w + i); }, scratch);
  if (threadIdx.x == 0) {
    st->converged = 1;
    set_status<T>(st, flags, sigma, isfinite(sigma), eps);
    st->done = 1;  // not a matrix: not counted in flags->done
  }
}

// One block per SweepItem. kSweep: d = M x over the item's rows and the item's partial Mᵀd; kAccumulate: only the
// partial, with d = u; kMatvec: only d. The call's first sweep reads the start vector v instead of x.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sweep_general_kernel(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                         const SweepItem* items, int mode, double eps) {
  __shared__ double scratch[kWarps];
  __shared__ double d_group[kRowsPerGroup];
  const SweepItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  DeviceLayerState* st = states + item.layer;
  if (L.vector_norm) {
    if (!st->done) vector_norm(L, st, flags, eps, scratch);
    return;
  }
  if (st->failed || st->done) return;

  const bool matvec = mode != static_cast<int>(SweepMode::kAccumulate);
  const bool accumulate = mode != static_cast<int>(SweepMode::kMatvec);
  const bool first = st->rounds == 0;
  const int warp = threadIdx.x >> 5;
  double* partial = L.partial + static_cast<uint64_t>(item.slot) * L.cols;
  double sum_of_squares = 0;  // thread 0: Σ d² over the slot, in row order
  for (uint64_t rg = item.row_begin; rg < item.row_end; rg += kRowsPerGroup) {
    const uint64_t left = item.row_end - rg;
    const int n = left < kRowsPerGroup ? static_cast<int>(left) : kRowsPerGroup;
    if (matvec) {
      for (int g = warp; g < n; g += kWarps) {
        const double d = first ? row_dot(L, rg + g, L.v) : row_dot(L, rg + g, L.x);
        if ((threadIdx.x & 31) == 0) {
          d_group[g] = d;
          L.d[rg + g] = d;
        }
      }
    } else if (threadIdx.x < n) {
      d_group[threadIdx.x] = static_cast<double>(L.u[rg + threadIdx.x]);
    }
    __syncthreads();
    if (matvec && threadIdx.x == 0) {
      for (int g = 0; g < n; ++g) sum_of_squares += d_group[g] * d_group[g];
    }
    if (accumulate) {
      const bool first_group = rg == item.row_begin;
      for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) {
        const T* w = L.w + column_base(L, c) + rg * L.inner;
        double s = first_group ? 0.0 : partial[c];
        for (int g = 0; g < n; ++g) s += d_group[g] * static_cast<double>(w[g * L.inner]);
        partial[c] = s;
      }
    }
    __syncthreads();
  }
  if (matvec && threadIdx.x == 0) L.slot_stats[item.slot] = sum_of_squares;
}

template <typename T>
void launch_general(const SweepLaunch& launch, const DeviceLayer<T>* layers, DeviceLayerState* states,
                    DeviceBatchFlags* flags, const SweepItem* items, SweepMode mode, double eps, cudaStream_t stream) {
  SN_LAUNCH(sweep_general_kernel<T>, launch.item_count, kThreads, stream, layers, states, flags,
            items + launch.item_begin, static_cast<int>(mode), eps);
  SN_CUDA_CHECK_LAUNCH("sweep_general_kernel");
}

}  // namespace
}  // namespace sn::cuda
