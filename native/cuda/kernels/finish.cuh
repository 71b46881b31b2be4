#pragma once
// The finish: t = Mᵀd as the sum of the sweep's partial slots, then, in each layer's last block, the layer-wide step
// of the iteration (norms, u, v, σ, the status, and the converge mode's test). One block per FinishItem
// (batch_plan.h). Part of power_kernels.cu (included there only).
#include "block_reduce.cuh"
#include "common.cuh"

namespace sn::cuda {
namespace {

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

}  // namespace

template <typename T>
void launch_finish(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                   uint32_t* counters, const FinishItem* items, size_t item_count, FinishMode mode,
                   const KernelParams& params, cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(finish_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, counters,
            items, static_cast<int>(mode), params);
  SN_CUDA_CHECK_LAUNCH("finish_kernel");
}

}  // namespace sn::cuda
