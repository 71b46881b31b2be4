#pragma once
// The commit: out = W/σ, and the new u and v, written only when every layer of the batch is finite (all or nothing).
// One block per CommitItem (batch_plan.h). Part of power_kernels.cu (included there only).
#include "common.cuh"

namespace sn::cuda {
namespace {

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
void launch_commit(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                   const CommitItem* items, size_t item_count, int iterated, cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(commit_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, flags, items,
            iterated);
  SN_CUDA_CHECK_LAUNCH("commit_kernel");
}

}  // namespace sn::cuda
