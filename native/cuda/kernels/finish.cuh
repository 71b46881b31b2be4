#pragma once
// The finish of an iteration: level 2 of the slot reduction, t = Mᵀd over a chunk of columns as the sum of the slot
// groups (or of the slots) in order, with the chunk's Σ (t/t_den)²; then, in each layer's last block (an integer
// counter, so no sum's order depends on timing), the layer-wide step of the mode: norms from the slots' and chunks'
// sums of squares (an exact rescaled pass only when those leave the safe range), σ, the status, and the next sweep's
// x. u and v are not written here: the commit derives them from d, t and the scalars kept in the state. One block per
// FinishItem (batch_plan.h); one device function per mode. Part of power_kernels.cu (included there only).
#include "block_reduce.cuh"
#include "common.cuh"

namespace sn::cuda {
namespace {

template <typename T>
__device__ double norm_of_d(const DeviceLayer<T>& L, double* scratch) {
  return norm_from_stats(
      L.slot_stats, L.slots, L.rows, [&](uint64_t r) { return load_global(L.d + r); }, scratch);
}

// ‖t / t_den‖, from the chunks' sums of squares of the same quotients.
template <typename T>
__device__ double norm_of_t(const DeviceLayer<T>& L, double t_den, double* scratch) {
  return norm_from_stats(
      L.chunk_stats, L.chunks, L.cols, [&](uint64_t c) { return load_global(L.t + c) / t_den; }, scratch);
}

// x = v rounded to T, with v = (t / t_den) / v_den: what the CPU's update_v leaves for the next sweep.
template <typename T>
__device__ void write_x(const DeviceLayer<T>& L, double t_den, double v_den) {
  for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) {
    L.x[c] = static_cast<double>(static_cast<T>((load_global(L.t + c) / t_den) / v_den));
  }
}

// kDefault: u ← d/max(‖d‖,eps); t ← t/max(‖d‖,eps); v ← t/max(‖t‖,eps); after the last iteration σ = ‖t‖²/max(‖t‖,eps).
template <typename T>
__device__ void finish_default(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags,
                               const KernelParams& p, double* scratch) {
  const bool lead = threadIdx.x == 0;
  const double nd = norm_of_d(L, scratch);
  const double den_u = clamp_norm(nd, p.eps);
  const double nt = isfinite(nd) ? norm_of_t(L, den_u, scratch) : nd;
  if (!isfinite(nt)) {
    if (lead) fail(st, flags);
    return;
  }
  const double den_v = clamp_norm(nt, p.eps);
  if (!p.last) write_x(L, den_u, den_v);
  if (lead) {
    st->u_den = den_u;
    st->t_den = den_u;
    st->v_den = den_v;
    st->rounds += 1;
    if (p.last) set_status<T>(st, flags, nt * (nt / den_v), true, p.eps);
  }
}

// kLegacyFirstV: v ← normalize(Wᵀu) from the start u (the sweep ran with d = u).
template <typename T>
__device__ void finish_legacy_first_v(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags,
                                      const KernelParams& p, double* scratch) {
  const bool lead = threadIdx.x == 0;
  const double nt = norm_of_t(L, 1.0, scratch);
  if (!isfinite(nt)) {
    if (lead) fail(st, flags);
    return;
  }
  const double den_v = clamp_norm(nt, p.eps);
  write_x(L, 1.0, den_v);
  if (lead) {
    st->t_den = 1.0;
    st->v_den = den_v;
    st->rounds += 1;
  }
}

// kLegacy: u ← normalize(W v); after the last iteration σ = ‖d‖²/max(‖d‖,eps) (its sweep computed d only, so t
// and the v it gives stay from the iteration before); else v ← normalize(Wᵀu).
template <typename T>
__device__ void finish_legacy(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags,
                              const KernelParams& p, double* scratch) {
  const bool lead = threadIdx.x == 0;
  const double nd = norm_of_d(L, scratch);
  if (!isfinite(nd)) {
    if (lead) fail(st, flags);
    return;
  }
  const double den_u = clamp_norm(nd, p.eps);
  if (p.last) {
    if (lead) {
      st->u_den = den_u;
      st->rounds += 1;
      set_status<T>(st, flags, nd * (nd / den_u), true, p.eps);
    }
    return;
  }
  const double nt = norm_of_t(L, den_u, scratch);
  if (!isfinite(nt)) {
    if (lead) fail(st, flags);
    return;
  }
  const double den_v = clamp_norm(nt, p.eps);
  write_x(L, den_u, den_v);
  if (lead) {
    st->u_den = den_u;
    st->t_den = den_u;
    st->v_den = den_v;
    st->rounds += 1;
  }
}

// kEval: σ = u·(W v) with u and v as they are.
template <typename T>
__device__ void finish_eval(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags,
                            const KernelParams& p, double* scratch) {
  const double nd = norm_of_d(L, scratch);
  double dot = 0;
  for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) dot += static_cast<double>(L.u[r]) * load_global(L.d + r);
  dot = block_sum(dot, scratch);
  if (threadIdx.x == 0) {
    st->rounds += 1;
    set_status<T>(st, flags, dot, isfinite(nd) && isfinite(dot), p.eps);
  }
}

// kConverge: the CPU's converge loop, one iteration per launch; x is kept at v/σ so d and t stay near 1 and σ.
template <typename T>
__device__ void finish_converge(const DeviceLayer<T>& L, DeviceLayerState* st, DeviceBatchFlags* flags,
                                const KernelParams& p, double* scratch) {
  const bool lead = threadIdx.x == 0;
  const bool retried = st->retry != 0;
  const int32_t run_before = st->iterations_run;
  const double previous_before = st->previous;
  __syncthreads();  // every thread has read the state before thread 0 changes it
  const double nd = norm_of_d(L, scratch);
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
        st->rounds += 1;
        set_status<T>(st, flags, 0.0, true, p.eps);
        mark_done(st, flags);
      }
      return;
    }
    if (j == 1) previous = nd;  // ‖W v₀‖, the estimate before the first full iteration
  }
  const double nt = norm_of_t(L, 1.0, scratch);
  if (!retried && j == 1 && !(isfinite(nt) && nt > kSafeMin)) {
    // t ~ σ² left double's range for float64 weights beyond 1e±150: rescale x and sweep again.
    for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) L.x[c] = static_cast<double>(L.v[c]) / nd;
    if (lead) {
      st->retry = 1;
      st->iterations_run = 1;
      st->previous = previous;
      st->rounds += 1;
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
    converged = fabs(sigma - previous) <= p.tolerance * sigma;
    done = converged || j >= p.iterations;
    if (!done) {
      for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) L.x[c] = (load_global(L.t + c) / nt) / sigma;
    }
  }
  if (lead) {
    st->retry = 0;
    st->iterations_run = j;
    st->previous = sigma;
    st->u_den = nd;  // u = d/‖d‖, v = t/‖t‖
    st->t_den = nt;
    st->v_den = 1.0;
    st->rounds += 1;
    if (done) {
      st->converged = converged ? 1 : 0;
      set_status<T>(st, flags, sigma, true, p.eps);
      mark_done(st, flags);
    }
  }
}

// The denominator level 2 divides t by before summing squares: ‖d‖ clamped where u = d/max(‖d‖,eps) feeds v.
template <typename T>
__device__ double t_denominator(const DeviceLayer<T>& L, FinishMode mode, const KernelParams& p, double* scratch) {
  if (mode == FinishMode::kDefault || mode == FinishMode::kLegacy) return clamp_norm(norm_of_d(L, scratch), p.eps);
  return 1.0;
}

// Level 2: t over the item's columns, and their Σ (t/t_den)² into the chunk's stats.
template <typename T>
__device__ void sum_groups(const DeviceLayer<T>& L, const FinishItem& item, double t_den, uint32_t slots_per_group,
                           double* scratch) {
  const uint32_t sources = L.groups ? L.groups : L.slots;
  const uint64_t stride = uint64_t(L.groups ? slots_per_group : 1) * L.cols;
  double squares = 0;
  for (uint64_t c = item.col_begin + threadIdx.x; c < item.col_end; c += kThreads) {
    double s = 0;
    for (uint32_t k = 0; k < sources; ++k) s += L.partial[k * stride + c];
    L.t[c] = s;
    const double q = s / t_den;
    squares += q * q;
  }
  squares = block_sum(squares, scratch);
  if (threadIdx.x == 0) L.chunk_stats[item.chunk] = squares;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    finish_kernel(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags, uint32_t* counters,
                  const FinishItem* items, int mode_value, KernelParams params) {
  __shared__ double scratch[kWarps];
  __shared__ int is_last;
  const FinishItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  DeviceLayerState* st = states + item.layer;
  if (st->failed || st->done) return;  // uniform over the layer's blocks: only its last block changes these
  const auto mode = static_cast<FinishMode>(mode_value);
  // Eval and the legacy order's last iteration swept d only: no t.
  const bool needs_t = mode != FinishMode::kEval && !(mode == FinishMode::kLegacy && params.last);
  if (needs_t) sum_groups(L, item, t_denominator(L, mode, params, scratch), params.slots_per_group, scratch);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) is_last = atomicAdd(counters + item.layer, 1u) == L.chunks - 1;
  __syncthreads();
  if (!is_last) return;
  __threadfence();
  if (threadIdx.x == 0) counters[item.layer] = 0;  // ready for the next launch
  switch (mode) {
    case FinishMode::kDefault: return finish_default(L, st, flags, params, scratch);
    case FinishMode::kLegacyFirstV: return finish_legacy_first_v(L, st, flags, params, scratch);
    case FinishMode::kLegacy: return finish_legacy(L, st, flags, params, scratch);
    case FinishMode::kEval: return finish_eval(L, st, flags, params, scratch);
    case FinishMode::kConverge: return finish_converge(L, st, flags, params, scratch);
  }
}

}  // namespace

template <typename T>
void launch_finish(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags, uint32_t* counters,
                   const FinishItem* items, size_t item_count, FinishMode mode, const KernelParams& params,
                   cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(finish_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, counters,
            items, static_cast<int>(mode), params);
  SN_CUDA_CHECK_LAUNCH("finish_kernel");
}

}  // namespace sn::cuda
