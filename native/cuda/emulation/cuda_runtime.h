#pragma once
// A CPU emulation of the small part of the CUDA runtime and device language that native/cuda uses, so the real
// kernels and host code can be built without nvcc and run without a GPU (CMake: SN_CUDA=EMULATE). Each block runs
// on one persistent host thread per CUDA thread, with real barriers and warp exchanges; blocks run one after another.
// The EMULATE build launches 64 threads per block (SN_CUDA_BLOCK_THREADS in CMakeLists.txt; 256 on a GPU) to keep its
// barriers cheap. It checks the kernels' logic (indices, reductions, synchronisation, the all-or-nothing protocol),
// not their speed, and not the weak memory ordering of a real GPU. Never part of a normal build.
#include <atomic>
#include <barrier>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

struct dim3 {
  unsigned x = 0, y = 0, z = 0;
};

using std::fabs;
using std::fmax;
using std::isfinite;
using std::nan;
using std::sqrt;

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorECCUncorrectable = 214,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
using cudaStream_t = struct EmulatedStream*;
using cudaEvent_t = struct EmulatedEvent*;
constexpr unsigned cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  int major, minor;
  size_t totalGlobalMem;
};

const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);

namespace sn_emulation {

constexpr unsigned kWarpSize = 32;

// Runs body() on `threads` threads for each of `blocks` blocks, one block after another.
void launch(unsigned blocks, unsigned threads, const std::function<void()>& body);

extern thread_local dim3 thread_index;
extern dim3 block_index;
void block_barrier();
int block_barrier_or(int value);
double warp_exchange(double value, unsigned source_lane);

}  // namespace sn_emulation

#define threadIdx (::sn_emulation::thread_index)
#define blockIdx (::sn_emulation::block_index)

inline void __syncthreads() { sn_emulation::block_barrier(); }
inline int __syncthreads_or(int v) { return sn_emulation::block_barrier_or(v); }
inline double __shfl_xor_sync(unsigned, double v, int offset) {
  return sn_emulation::warp_exchange(v, (threadIdx.x & 31u) ^ static_cast<unsigned>(offset));
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
template <typename T>
inline T __ldcg(const T* p) {
  return std::atomic_ref<T>(*const_cast<T*>(p)).load();
}
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline int atomicSub(int* p, int v) { return std::atomic_ref<int>(*p).fetch_sub(v); }
inline int atomicExch(int* p, int v) { return std::atomic_ref<int>(*p).exchange(v); }

// kernel<<<blocks, threads, 0, stream>>>(args...) for the emulation.
#define SN_LAUNCH(kernel, blocks, threads, stream, ...) \
  ::sn_emulation::launch((blocks), (threads), [&] { kernel(__VA_ARGS__); })
