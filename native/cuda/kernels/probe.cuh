#pragma once
// Probe kernels, not part of a call: an empty kernel, whose launch and synchronisation time the 'auto' cost model
// takes as the fixed cost of a GPU call (cudaProbe), and a streaming read of a buffer, for the benchmark's device read
// bandwidth. Part of power_kernels.cu (included there only).
#include "common.cuh"

namespace sn::cuda {
namespace {

__global__ void empty_kernel() {}

// Reads `vectors` 16-byte vectors grid-strided, four in flight per thread; each block writes one sum to sink, so the
// loads cannot be optimised away.
__global__ void __launch_bounds__(kThreads) read_kernel(const float4* data, uint64_t vectors, double* sink) {
  __shared__ double scratch[kWarps];
  float s = 0;
  const uint64_t stride = uint64_t(gridDim.x) * kThreads;
  for (uint64_t k = uint64_t(blockIdx.x) * kThreads + threadIdx.x; k < vectors; k += 4 * stride) {
    float4 a[4];
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      const uint64_t at = k + m * stride;
      a[m] = at < vectors ? __ldcs(data + at) : make_float4(0, 0, 0, 0);
    }
#pragma unroll
    for (int m = 0; m < 4; ++m) s += (a[m].x + a[m].y) + (a[m].z + a[m].w);
  }
  double v = s;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int w = 0; w < kWarps; ++w) total += scratch[w];
    sink[blockIdx.x] = total;
  }
}

}  // namespace

void launch_empty(cudaStream_t stream) {
  SN_LAUNCH(empty_kernel, 1, 32, stream, );
  SN_CUDA_CHECK_LAUNCH("empty_kernel");
}

void launch_read(const void* data, size_t bytes, double* sink, uint32_t blocks, cudaStream_t stream) {
  SN_LAUNCH(read_kernel, blocks, kThreads, stream, static_cast<const float4*>(data), uint64_t(bytes / 16), sink);
  SN_CUDA_CHECK_LAUNCH("read_kernel");
}

}  // namespace sn::cuda
