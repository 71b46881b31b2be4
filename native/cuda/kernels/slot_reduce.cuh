#pragma once
// Level 1 of the slot reduction: the sweep leaves one partial Mᵀd per slot; for a layer with more slots than
// PlanTuning::slots_per_group, each block sums one group of consecutive slots over a range of columns, in slot order,
// into the group's first slot. Level 2, in the finish (finish.cuh), then sums the groups in group order. A fixed
// two-level tree over many blocks: the same bits every run. One block per ReduceItem (batch_plan.h).
// Part of power_kernels.cu (included there only).
#include "common.cuh"

namespace sn::cuda {
namespace {

template <typename T>
__global__ void __launch_bounds__(kThreads) reduce_kernel(const DeviceLayer<T>* layers, const DeviceLayerState* states,
                                                          const ReduceItem* items, uint32_t slots_per_group) {
  const ReduceItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  const DeviceLayerState* st = states + item.layer;
  if (st->failed || st->done) return;
  const uint32_t first = item.group * slots_per_group;
  const uint32_t end = first + slots_per_group < L.slots ? first + slots_per_group : L.slots;
  double* target = L.partial + uint64_t(first) * L.cols;
  // Each thread reads and writes only its own columns, so summing in place is safe.
  for (uint64_t c = item.col_begin + threadIdx.x; c < item.col_end; c += kThreads) {
    double s = 0;
    for (uint32_t k = first; k < end; ++k) s += L.partial[uint64_t(k) * L.cols + c];
    target[c] = s;
  }
}

}  // namespace

template <typename T>
void launch_reduce(const DeviceLayer<T>* layers, const DeviceLayerState* states, const ReduceItem* items,
                   size_t item_count, uint32_t slots_per_group, cudaStream_t stream) {
  if (item_count == 0) return;
  SN_LAUNCH(reduce_kernel<T>, static_cast<unsigned>(item_count), kThreads, stream, layers, states, items,
            slots_per_group);
  SN_CUDA_CHECK_LAUNCH("reduce_kernel");
}

}  // namespace sn::cuda
