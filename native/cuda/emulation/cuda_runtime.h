#pragma once
// A CPU emulation of the part of the CUDA runtime and device language that native/cuda uses, so the real kernels and
// host code can be built without nvcc and run without a GPU (CMake: SN_CUDA=EMULATE). Never part of a normal build.
//
// Honest where the host code could be wrong:
//   - Streams run their work on a thread of their own, in order, asynchronously to the caller: a missing
//     synchronisation reads stale results here too. Events complete when the stream reaches them, and
//     cudaStreamWaitEvent really makes a stream wait. Copies from pageable host memory are synchronous (as on a GPU),
//     from pinned memory (cudaHostAlloc) asynchronous; pageable copies cannot be captured into a graph.
//   - Graph capture records a stream's work instead of running it; a graph replays the same work.
//   - Memory from cudaMalloc and cudaHostAlloc, and dynamic shared memory, start as 0xff bytes (NaN as floats).
// And where the kernels could be wrong:
//   - Each CUDA thread is a fiber (a user-space context with its own stack); a block barrier, warp exchange or
//     cluster barrier switches to the next runnable fiber, alternating the order from round to round, so a read that
//     races another thread's write sees it missing in one order or the other. The blocks of a thread-block cluster run
//     together, with a real cluster barrier and distributed shared memory; clusters run one after another. A barrier
//     some threads never reach aborts with a message. cp.async copies land only when waited for.
// It checks the kernels' logic (indices, reductions, synchronisation, the all-or-nothing protocol), not their speed,
// and not the weak memory ordering of a real GPU. The EMULATE build launches 64 threads per block
// (SN_CUDA_BLOCK_THREADS in CMakeLists.txt; 256 on a GPU), reports 2 multiprocessors and clusters of up to 4 blocks.
#include <atomic>
#include <barrier>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>

#define SN_CUDA_EMULATION 1

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3() = default;
  dim3(unsigned vx, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

using std::fabs;
using std::fma;
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
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorAssert = 710,
  cudaErrorHardwareStackError = 714,
  cudaErrorIllegalInstruction = 715,
  cudaErrorMisalignedAddress = 716,
  cudaErrorInvalidAddressSpace = 717,
  cudaErrorInvalidPc = 718,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorUnknown = 999,
};
using cudaError = cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrClusterLaunch = 120 };
enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};
using cudaStream_t = struct EmulatedStream*;
using cudaEvent_t = struct EmulatedEvent*;
using cudaGraph_t = struct EmulatedGraph*;
using cudaGraphExec_t = struct EmulatedGraphExec*;
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;
constexpr unsigned cudaHostAllocDefault = 0;

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
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaMalloc(void** p, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
cudaError_t cudaFree(void* p);
cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* p);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t s);
cudaError_t cudaEventCreate(cudaEvent_t* e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b);

namespace sn_emulation {

constexpr unsigned kWarpSize = 32;
constexpr unsigned kMaxCluster = 4;
constexpr size_t kMaxSharedBytes = 227 * 1024;

// Queues body() on `stream` as a launch of `blocks` blocks of `threads` threads in clusters of `cluster`, each block
// with `shared` bytes of dynamic shared memory. A bad configuration is reported by the next cudaGetLastError.
void launch(cudaStream_t stream, unsigned blocks, unsigned threads, size_t shared, unsigned cluster,
            std::function<void()> body);

dim3& thread_index();
dim3& block_index();
dim3& grid_dim();
void block_barrier();
int block_barrier_or(int value);
double warp_exchange(double value, unsigned source_lane);
void cluster_barrier();
unsigned cluster_rank();
void* cluster_peer(void* shared, unsigned rank);
unsigned char* dynamic_shared();
void copy_async(void* shared, const void* global, int bytes);
void copy_async_commit();
void copy_async_wait(int pending);

}  // namespace sn_emulation

#define threadIdx (::sn_emulation::thread_index())
#define blockIdx (::sn_emulation::block_index())
#define gridDim (::sn_emulation::grid_dim())

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
template <typename T>
inline T __ldcs(const T* p) {
  return *p;
}
template <typename T>
inline void __stcs(T* p, T v) {
  *p = v;
}
inline unsigned atomicAdd(unsigned* p, unsigned v) { return std::atomic_ref<unsigned>(*p).fetch_add(v); }
inline int atomicAdd(int* p, int v) { return std::atomic_ref<int>(*p).fetch_add(v); }
inline int atomicSub(int* p, int v) { return std::atomic_ref<int>(*p).fetch_sub(v); }
inline int atomicExch(int* p, int v) { return std::atomic_ref<int>(*p).exchange(v); }

// kernel<<<blocks, threads, 0, stream>>>(args...) and its cluster form for the emulation: the arguments are copied,
// as a launch (and a graph) copies them.
#define SN_LAUNCH(kernel, blocks, threads, stream, ...) \
  ::sn_emulation::launch((stream), (blocks), (threads), 0, 1, [=] { kernel(__VA_ARGS__); })
#define SN_LAUNCH_EX(kernel, blocks, threads, shared, cluster, stream, ...) \
  ::sn_emulation::launch((stream), (blocks), (threads), (shared), (cluster), [=] { kernel(__VA_ARGS__); })
