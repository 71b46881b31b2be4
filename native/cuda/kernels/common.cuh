#pragma once
// What every kernel of the power iteration shares: the block size, cached and streaming loads, the launch helper,
// PyTorch's clamped norm, and how a layer's status is set or failed. Part of power_kernels.cu (included there only,
// inside one translation unit).
#include <cstdint>

#include "../cuda_check.h"
#include "../power_kernels.cuh"

// kernel<<<blocks, threads, 0, stream>>>(args...), and the same with dynamic shared memory and a cluster size; the CPU
// emulation (SN_CUDA=EMULATE) defines its own. `kernel` is one name (a template-id with commas goes in a variable).
#ifndef SN_LAUNCH
#define SN_LAUNCH(kernel, blocks, threads, stream, ...) kernel<<<(blocks), (threads), 0, (stream)>>>(__VA_ARGS__)
#define SN_LAUNCH_EX(kernel, blocks, threads, shared, cluster, stream, ...) \
  ::sn::cuda::launch_ex((kernel), (blocks), (threads), (shared), (cluster), (stream), __VA_ARGS__)
#endif

namespace sn::cuda {

#ifndef SN_CUDA_EMULATION
// A 1-D launch configuration with clusters of `cluster` blocks when `cluster` > 1 (sm_90), a plain one otherwise;
// `attribute` holds the cluster dimension and must outlive the configuration.
inline cudaLaunchConfig_t cluster_launch_config(unsigned blocks, unsigned threads, size_t shared, unsigned cluster,
                                                cudaStream_t stream, cudaLaunchAttribute& attribute) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(blocks, 1, 1);
  config.blockDim = dim3(threads, 1, 1);
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  if (cluster > 1) {
    attribute.id = cudaLaunchAttributeClusterDimension;
    attribute.val.clusterDim.x = cluster;
    attribute.val.clusterDim.y = 1;
    attribute.val.clusterDim.z = 1;
    config.attrs = &attribute;
    config.numAttrs = 1;
  }
  return config;
}

// cudaLaunchKernelEx with a cluster dimension when `cluster` > 1 (sm_90); a plain launch otherwise.
template <typename... Params, typename... Args>
void launch_ex(void (*kernel)(Params...), unsigned blocks, unsigned threads, size_t shared, unsigned cluster,
               cudaStream_t stream, Args... args) {
  cudaLaunchAttribute attribute;
  const cudaLaunchConfig_t config = cluster_launch_config(blocks, threads, shared, cluster, stream, attribute);
  SN_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...));
}
#endif

namespace {

// Threads per block; the CPU emulation builds with fewer, to keep its barriers cheap (every loop strides by it).
#ifndef SN_CUDA_BLOCK_THREADS
#define SN_CUDA_BLOCK_THREADS 256
#endif
constexpr int kThreads = SN_CUDA_BLOCK_THREADS;
constexpr int kWarps = kThreads / 32;
constexpr double kSafeMin = 0x1p-900;

// Elements of T in one 16-byte load.
template <typename T>
constexpr int kUnit = 16 / static_cast<int>(sizeof(T));

// Loads that bypass L1: data written by other blocks of the same launch, or of an earlier one.
__device__ __forceinline__ double load_global(const double* p) { return __ldcg(p); }
__device__ __forceinline__ double load_global(const float* p) { return static_cast<double>(__ldcg(p)); }

// PyTorch's max(‖x‖, eps), except that a zero vector with eps = 0 divides by 1 rather than giving 0/0.
__device__ __forceinline__ double clamp_norm(double norm, double eps) {
  const double den = fmax(norm, eps);
  return den > 0 ? den : 1.0;
}

// A layer that leaves the iteration: counted in flags->done once. Thread 0 only.
__device__ __forceinline__ void mark_done(DeviceLayerState* st, DeviceBatchFlags* flags) {
  if (!st->done) {
    st->done = 1;
    atomicAdd(&flags->done, 1);
  }
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
  mark_done(st, flags);
}

}  // namespace

}  // namespace sn::cuda
