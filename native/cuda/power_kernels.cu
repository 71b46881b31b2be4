#include <cfloat>
#include <cstdint>

#include "cuda_check.h"
#include "power_kernels.cuh"

// kernel<<<blocks, threads, 0, stream>>>(args...); the CPU emulation (SN_CUDA=EMULATE) defines its own.
#ifndef SN_LAUNCH
#define SN_LAUNCH(kernel, blocks, threads, stream, ...) kernel<<<(blocks), (threads), 0, (stream)>>>(__VA_ARGS__)
#endif

namespace sn::cuda {
namespace {

// Threads per block; the CPU emulation builds with fewer, to keep its barriers cheap (every loop strides by it).
#ifndef SN_CUDA_BLOCK_THREADS
#define SN_CUDA_BLOCK_THREADS 256
#endif
constexpr int kThreads = SN_CUDA_BLOCK_THREADS;
constexpr int kWarps = kThreads / 32;
// Rows whose d the sweep computes before one pass over their columns accumulates Mᵀd: the pass re-reads these rows
// while they are still in L1/L2, and the partial vector is read and written once per group.
constexpr int kRowsPerGroup = 32;
constexpr double kSafeMin = 0x1p-900;

// Loads that bypass L1: data written by other blocks of the same launch.
__device__ __forceinline__ double load_global(const double* p) { return __ldcg(p); }
__device__ __forceinline__ double load_global(const float* p) { return static_cast<double>(__ldcg(p)); }

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The same bits in every thread: the warps' sums added in warp order.
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
  for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  double m = 0;
  for (int w = 0; w < kWarps; ++w) m = fmax(m, scratch[w]);
  return m;
}

// ‖x‖₂ as the CPU's norm2_from: the plain sum of squares when it is safely in range, else rescaled by max |x_i|.
// NaN when x holds NaN or ±Inf. Every thread of the block calls it and gets the same bits.
template <typename E>
__device__ double block_norm2(const E* x, uint64_t n, double* scratch) {
  double s = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double a = load_global(x + i);
    s += a * a;
  }
  s = block_sum(s, scratch);
  if (isfinite(s) && s >= kSafeMin) return sqrt(s);
  double m = 0;
  int bad = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double a = fabs(load_global(x + i));
    if (!(a <= DBL_MAX)) bad = 1;
    else m = fmax(m, a);
  }
  if (__syncthreads_or(bad)) return nan("");
  m = block_max(m, scratch);
  if (m == 0) return 0;
  s = 0;
  for (uint64_t i = threadIdx.x; i < n; i += kThreads) {
    const double y = load_global(x + i) / m;
    s += y * y;
  }
  return m * sqrt(block_sum(s, scratch));
}

// PyTorch's max(‖x‖, eps), except that a zero vector with eps = 0 divides by 1 rather than giving 0/0.
__device__ __forceinline__ double clamp_norm(double norm, double eps) {
  const double den = fmax(norm, eps);
  return den > 0 ? den : 1.0;
}

// σ rounded to T, and the layer's status; thread 0 only.
template <typename T>
__device__ void set_status(DeviceLayerState* st, DeviceBatchFlags* flags, double sigma, bool finite, double eps) {
  const double rounded = static_cast<double>(static_cast<T>(sigma));
  st->sigma = rounded;
  if (!finite || !isfinite(rounded)) {
    st->status = LayerStatus::kNonFinite;
    st->failed = 1;
    atomicExch(&flags->non_finite, 1);
  } else {
    st->status = fabs(rounded) <= eps ? LayerStatus::kBelowEps : LayerStatus::kNormalized;
  }
}

// A non-finite value met mid-iteration: kNonFinite, nothing more for this layer; thread 0 only.
__device__ void fail(DeviceLayerState* st, DeviceBatchFlags* flags) {
  st->status = LayerStatus::kNonFinite;
  st->failed = 1;
  atomicExch(&flags->non_finite, 1);
  if (st->active) {
    st->active = 0;
    atomicSub(&flags->active, 1);
  }
}

// Element (r, c) of the layer's matrix lives at w[column_base(c) + r·inner].
template <typename T>
__device__ __forceinline__ uint64_t column_base(const DeviceLayer<T>& L, uint64_t c) {
  if (L.outer == 1) return c;
  const uint64_t o = c / L.inner;
  return o * L.rows * L.inner + (c - o * L.inner);
}

// M_r · x for one row, by one warp; lane 0's result is the row's d. X is the double x or the start vector v.
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

// One block per SweepItem. kSweep: d = M x over the item's rows and the item's partial Mᵀd; kAccumulate: only the
// partial, with d = u; kMatvec: only d. The first sweep of a call reads the start vectors (v, or u) directly and
// also computes every 1-D weight's norm.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sweep_kernel(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                 const SweepItem* items, int mode, KernelParams params) {
  __shared__ double scratch[kWarps];
  __shared__ double d_group[kRowsPerGroup];
  const SweepItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  DeviceLayerState* st = states + item.layer;
  if (L.vector_norm) {
    if (!params.first) return;
    const double sigma = block_norm2(L.w, L.size, scratch);
    if (threadIdx.x == 0) {
      st->converged = 1;
      set_status<T>(st, flags, sigma, isfinite(sigma), params.eps);
      st->active = 0;
    }
    return;
  }
  if (st->failed || !st->active) return;

  const bool matvec = mode != static_cast<int>(SweepMode::kAccumulate);
  const bool accumulate = mode != static_cast<int>(SweepMode::kMatvec);
  const int warp = threadIdx.x >> 5;
  double* partial = L.partial + static_cast<uint64_t>(item.slot) * L.cols;
  for (uint64_t rg = item.row_begin; rg < item.row_end; rg += kRowsPerGroup) {
    const uint64_t left = item.row_end - rg;
    const int n = left < kRowsPerGroup ? static_cast<int>(left) : kRowsPerGroup;
    if (matvec) {
      for (int g = warp; g < n; g += kWarps) {
        const double d = params.first ? row_dot(L, rg + g, L.v) : row_dot(L, rg + g, L.x);
        if ((threadIdx.x & 31) == 0) {
          d_group[g] = d;
          L.d[rg + g] = d;
        }
      }
    } else if (threadIdx.x < n) {
      d_group[threadIdx.x] = static_cast<double>(L.u[rg + threadIdx.x]);
    }
    __syncthreads();
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
}

// update_v of the CPU: t ← t / den_u; v_new = t / max(‖t‖, eps) rounded to T; x = v_new. Each thread touches the
// same indices in every pass, so it reads only its own writes. Returns ‖t‖ and den_v through the references.
template <typename T>
__device__ bool update_v(const DeviceLayer<T>& L, double den_u, double* scratch, double& nt, double& den_v, double eps) {
  for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) L.t[c] = load_global(L.t + c) / den_u;
  nt = block_norm2(L.t, L.cols, scratch);
  if (!isfinite(nt)) return false;
  den_v = clamp_norm(nt, eps);
  for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) {
    const T v = static_cast<T>(load_global(L.t + c) / den_v);
    L.v_new[c] = v;
    L.x[c] = static_cast<double>(v);
  }
  return true;
}

template <typename T>
__device__ void update_u(const DeviceLayer<T>& L, double den) {
  for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) L.u_new[r] = static_cast<T>(load_global(L.d + r) / den);
}

// The layer-wide step after a sweep, run by the last finish block of the layer: norms, u, v, σ and the status.
template <typename T>
__device__ void finish_layer(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags, int mode,
                             const KernelParams& p, double* scratch) {
  const bool lead = threadIdx.x == 0;
  double nt = 0, den_v = 1;
  switch (static_cast<FinishMode>(mode)) {
    case FinishMode::kDefault: {
      const double nd = block_norm2(L.d, L.rows, scratch);
      if (!isfinite(nd)) {
        if (lead) fail(st, flags);
        return;
      }
      const double den_u = clamp_norm(nd, p.eps);
      update_u(L, den_u);
      if (!update_v(L, den_u, scratch, nt, den_v, p.eps)) {
        if (lead) fail(st, flags);
        return;
      }
      if (p.last && lead) set_status<T>(st, flags, nt * (nt / den_v), true, p.eps);
      return;
    }
    case FinishMode::kLegacyFirstV:
      if (!update_v(L, 1.0, scratch, nt, den_v, p.eps) && lead) fail(st, flags);
      return;
    case FinishMode::kLegacy: {
      const double nd = block_norm2(L.d, L.rows, scratch);
      if (!isfinite(nd)) {
        if (lead) fail(st, flags);
        return;
      }
      const double den_u = clamp_norm(nd, p.eps);
      update_u(L, den_u);
      if (p.last) {
        if (lead) set_status<T>(st, flags, nd * (nd / den_u), true, p.eps);
      } else if (!update_v(L, den_u, scratch, nt, den_v, p.eps) && lead) {
        fail(st, flags);
      }
      return;
    }
    case FinishMode::kEval: {
      const double nd = block_norm2(L.d, L.rows, scratch);
      double dot = 0;
      for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) dot += static_cast<double>(L.u[r]) * load_global(L.d + r);
      dot = block_sum(dot, scratch);
      if (lead) set_status<T>(st, flags, dot, isfinite(nd) && isfinite(dot), p.eps);
      return;
    }
    case FinishMode::kConverge: {
      // The CPU's converge loop, one iteration per launch; x is kept at v/σ so d and t stay near 1 and σ.
      const bool retried = st->retry != 0;
      const int32_t run_before = st->iterations_run;
      const double previous_before = st->previous;
      __syncthreads();  // every thread has read the state before thread 0 changes it
      double nd = block_norm2(L.d, L.rows, scratch);
      int32_t j = run_before;
      double previous = previous_before;
      if (!retried) {
        if (!isfinite(nd)) {
          if (lead) fail(st, flags);
          return;
        }
        j = run_before + 1;
        if (nd == 0) {  // a zero matrix, or a start vector in its null space
          if (lead) {
            st->iterations_run = j;
            st->converged = 1;
            set_status<T>(st, flags, 0.0, true, p.eps);
            st->active = 0;
            atomicSub(&flags->active, 1);
          }
          return;
        }
        if (j == 1) previous = nd;  // ‖W v₀‖, the estimate before the first full iteration
      }
      nt = block_norm2(L.t, L.cols, scratch);
      if (!retried && j == 1 && !(isfinite(nt) && nt > kSafeMin)) {
        // t ~ σ² left double's range for float64 weights beyond 1e±150: rescale x and sweep again.
        for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) L.x[c] = static_cast<double>(L.v[c]) / nd;
        if (lead) {
          st->retry = 1;
          st->iterations_run = 1;
          st->previous = previous;
        }
        return;
      }
      if (!isfinite(nt) || !isfinite(nd)) {
        if (lead) fail(st, flags);
        return;
      }
      bool done = false, converged = false;
      double sigma = 0;
      if (nt == 0) {
        done = converged = true;
      } else {
        sigma = nt / nd;  // ‖Wᵀu‖ with u = d/‖d‖
        for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) L.u_new[r] = static_cast<T>(load_global(L.d + r) / nd);
        for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) {
          const double v = load_global(L.t + c) / nt;
          L.v_new[c] = static_cast<T>(v);
          L.x[c] = v / sigma;
        }
        converged = fabs(sigma - previous) <= p.tolerance * sigma;
        done = converged || j >= p.iterations;
      }
      if (lead) {
        st->retry = 0;
        st->iterations_run = j;
        st->previous = sigma;
        if (done) {
          st->converged = converged ? 1 : 0;
          set_status<T>(st, flags, sigma, true, p.eps);
          st->active = 0;
          atomicSub(&flags->active, 1);
        }
      }
      return;
    }
  }
}

// One block per FinishItem: t over the item's columns as the sum of the layer's partial slots in slot order; the
// layer's last block to finish (an integer counter, so the sums' order never depends on timing) runs finish_layer.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                  uint32_t* counters, const FinishItem* items, int mode, KernelParams params) {
  __shared__ double scratch[kWarps];
  __shared__ int is_last;
  const FinishItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  DeviceLayerState* st = states + item.layer;
  if (st->failed || !st->active) return;  // uniform over the layer's blocks: only its last block changes these
  const bool needs_t = mode != static_cast<int>(FinishMode::kEval) &&
                       !(mode == static_cast<int>(FinishMode::kLegacy) && params.last);
  if (needs_t) {
    for (uint64_t c = item.col_begin + threadIdx.x; c < item.col_end; c += kThreads) {
      double s = 0;
      for (uint32_t k = 0; k < L.sweep_items; ++k) s += L.partial[static_cast<uint64_t>(k) * L.cols + c];
      L.t[c] = s;
    }
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(counters + item.layer, 1u) == L.finish_chunks - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  if (threadIdx.x == 0) counters[item.layer] = 0;  // ready for the next launch
  finish_layer(L, st, flags, mode, params, scratch);
}

// One block per CommitItem, and nothing at all when any layer is non-finite: all or nothing.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    commit_kernel(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                  const CommitItem* items, int iterated) {
  if (flags->non_finite) return;
  const CommitItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  const DeviceLayerState st = states[item.layer];
  if (item.kind == CommitKind::kVectors) {
    if (!iterated || L.vector_norm || st.status != LayerStatus::kNormalized) return;
    for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) L.u[r] = L.u_new[r];
    for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) L.v[c] = L.v_new[c];
    return;
  }
  if (st.status == LayerStatus::kNormalized) {
    const T sigma = static_cast<T>(st.sigma);
    for (uint64_t i = item.begin + threadIdx.x; i < item.end; i += kThreads) L.out[i] = L.w[i] / sigma;
  } else if (L.out != L.w) {
    for (uint64_t i = item.begin + threadIdx.x; i < item.end; i += kThreads) L.out[i] = L.w[i];
  }
}

}  // namespace

template <typename T>
void launch_sweep(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                  const SweepItem* items, size_t item_count, SweepMode mode, const KernelParams& params,
                  cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(sweep_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, items,
            static_cast<int>(mode), params);
  SN_CUDA_CHECK_LAUNCH("sweep_kernel");
}

template <typename T>
void launch_finish(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                   uint32_t* counters, const FinishItem* items, size_t item_count, FinishMode mode,
                   const KernelParams& params, cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(finish_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, counters,
            items, static_cast<int>(mode), params);
  SN_CUDA_CHECK_LAUNCH("finish_kernel");
}

template <typename T>
void launch_commit(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                   const CommitItem* items, size_t item_count, int iterated, cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(commit_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, items,
            iterated);
  SN_CUDA_CHECK_LAUNCH("commit_kernel");
}

#define SN_INSTANTIATE(T)                                                                                       \
  template void launch_sweep<T>(const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*, const SweepItem*,   \
                                size_t, SweepMode, const KernelParams&, cudaStream_t);                          \
  template void launch_finish<T>(const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*, uint32_t*,         \
                                 const FinishItem*, size_t, FinishMode, const KernelParams&, cudaStream_t);     \
  template void launch_commit<T>(const DeviceLayer<T>*, const DeviceLayerState*, const DeviceBatchFlags*,        \
                                 const CommitItem*, size_t, int, cudaStream_t);
SN_INSTANTIATE(float)
SN_INSTANTIATE(double)
#undef SN_INSTANTIATE

}  // namespace sn::cuda
