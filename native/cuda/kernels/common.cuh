#pragma once
// What every kernel of the power iteration shares: the block size, L1-bypassing loads, PyTorch's clamped norm, and
// how a layer's status is set or failed. Part of power_kernels.cu (included there only, inside one translation unit).
#include <cstdint>

#include "../cuda_check.h"
#include "../power_kernels.cuh"

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
constexpr double kSafeMin = 0x1p-900;

// Loads that bypass L1: data written by other blocks of the same launch.
__device__ __forceinline__ double load_global(const double* p) { return __ldcg(p); }
__device__ __forceinline__ double load_global(const float* p) { return static_cast<double>(__ldcg(p)); }

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

}  // namespace

}  // namespace sn::cuda
