#pragma once
// The commit: the new u and v, and out = W/σ, written only when every layer of the batch is finite (all or nothing).
// The first vector_items blocks write one layer's u = T(d/u_den) and v = T((t/t_den)/v_den) each; the other blocks
// stride over the division items, 16 bytes at a time where W and out are aligned, with streaming loads and stores (W
// is read once and out is not read again here). One launch (batch_plan.h, CommitItem). Part of power_kernels.cu
// (included there only).
#include "common.cuh"

namespace sn::cuda {
namespace {

template <typename T>
struct Vector16;
template <>
struct Vector16<float> {
  using type = float4;
  __device__ static type divide(type a, float s) { return make_float4(a.x / s, a.y / s, a.z / s, a.w / s); }
};
template <>
struct Vector16<double> {
  using type = double2;
  __device__ static type divide(type a, double s) { return make_double2(a.x / s, a.y / s); }
};

template <typename T>
__device__ void commit_vectors(const DeviceLayer<T>& L, const DeviceLayerState& st) {
  if (L.vector_norm || st.status != LayerStatus::kNormalized) return;
  for (uint64_t r = threadIdx.x; r < L.rows; r += kThreads) L.u[r] = static_cast<T>(load_global(L.d + r) / st.u_den);
  for (uint64_t c = threadIdx.x; c < L.cols; c += kThreads) {
    L.v[c] = static_cast<T>((load_global(L.t + c) / st.t_den) / st.v_den);
  }
}

// out[i] = W[i]/σ over [begin, end) (begin is a multiple of the 16-byte unit), or a copy when σ is below eps.
template <typename T>
__device__ void divide_range(const DeviceLayer<T>& L, const DeviceLayerState& st, uint64_t begin, uint64_t end) {
  using V = Vector16<T>;
  using Vec = typename V::type;
  const bool normalized = st.status == LayerStatus::kNormalized;
  if (!normalized && L.out == L.w) return;  // below eps, in place: nothing to write
  const T sigma = normalized ? static_cast<T>(st.sigma) : T(1);
  uint64_t i = begin;
  const bool aligned = ((reinterpret_cast<uintptr_t>(L.w) | reinterpret_cast<uintptr_t>(L.out)) & 15) == 0;
  if (aligned) {
    constexpr int kU = kUnit<T>;
    constexpr int kInFlight = 4;  // loads issued before the first store
    const uint64_t vectors = (end - begin) / kU;
    const Vec* source = reinterpret_cast<const Vec*>(L.w + begin);
    Vec* target = reinterpret_cast<Vec*>(L.out + begin);
    for (uint64_t k = threadIdx.x; k < vectors; k += uint64_t(kInFlight) * kThreads) {
      Vec a[kInFlight];
#pragma unroll
      for (int m = 0; m < kInFlight; ++m) {
        const uint64_t at = k + uint64_t(m) * kThreads;
        if (at < vectors) a[m] = __ldcs(source + at);
      }
#pragma unroll
      for (int m = 0; m < kInFlight; ++m) {
        const uint64_t at = k + uint64_t(m) * kThreads;
        if (at < vectors) __stcs(target + at, normalized ? V::divide(a[m], sigma) : a[m]);
      }
    }
    i = begin + vectors * kU;
  }
  for (uint64_t k = i + threadIdx.x; k < end; k += kThreads) {
    const T w = __ldcs(L.w + k);
    __stcs(L.out + k, normalized ? w / sigma : w);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    commit_kernel(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                  const CommitItem* items, uint32_t vector_items, uint32_t divide_items) {
  if (flags->non_finite) return;
  if (blockIdx.x < vector_items) {
    const CommitItem item = items[blockIdx.x];
    commit_vectors(layers[item.layer], states[item.layer]);
    return;
  }
  const CommitItem* divides = items + vector_items;
  const uint32_t stride = gridDim.x - vector_items;
  for (uint32_t k = blockIdx.x - vector_items; k < divide_items; k += stride) {
    const CommitItem item = divides[k];
    divide_range(layers[item.layer], states[item.layer], item.begin, item.end);
  }
}

}  // namespace

template <typename T>
void launch_commit(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                   const CommitItem* items, size_t vector_items, size_t divide_items, uint32_t divide_blocks,
                   cudaStream_t stream) {
  const size_t blocks = vector_items + (divide_items ? divide_blocks : 0);
  if (blocks == 0) return;
  SN_LAUNCH(commit_kernel<T>, static_cast<unsigned>(blocks), kThreads, stream, layers, states, flags, items,
            static_cast<uint32_t>(vector_items), static_cast<uint32_t>(divide_items));
  SN_CUDA_CHECK_LAUNCH("commit_kernel");
}

}  // namespace sn::cuda
