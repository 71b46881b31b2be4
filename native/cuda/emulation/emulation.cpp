// The CPU emulation of the CUDA runtime behind cuda_runtime.h in this folder (SN_CUDA=EMULATE builds only).
#include "cuda_runtime.h"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sn_emulation {

thread_local dim3 thread_index;
dim3 block_index;

namespace {

// Persistent host threads, one per CUDA thread of a block; a launch runs its blocks one after another on them.
class Grid {
 public:
  void run(unsigned blocks, unsigned threads, const std::function<void()>& body) {
    std::lock_guard<std::mutex> launch_lock(launch_mutex_);
    if (threads != workers_.size()) resize(threads);
    body_ = &body;
    for (unsigned b = 0; b < blocks; ++b) {
      block_index.x = b;
      start_->arrive_and_wait();  // the workers run body() for this block
      done_->arrive_and_wait();
    }
  }

  std::barrier<>& block() { return *block_barrier_; }
  std::barrier<>& warp(unsigned w) { return *warp_barriers_[w]; }
  std::vector<double> exchange_;
  std::vector<int> or_flags_;

  ~Grid() { stop(); }

 private:
  void stop() {
    if (workers_.empty()) return;
    body_ = nullptr;
    start_->arrive_and_wait();
    for (std::thread& w : workers_) w.join();
    workers_.clear();
  }

  void resize(unsigned threads) {
    stop();
    start_ = std::make_unique<std::barrier<>>(threads + 1);
    done_ = std::make_unique<std::barrier<>>(threads + 1);
    block_barrier_ = std::make_unique<std::barrier<>>(threads);
    warp_barriers_.clear();
    for (unsigned w = 0; w < (threads + kWarpSize - 1) / kWarpSize; ++w) {
      warp_barriers_.push_back(std::make_unique<std::barrier<>>(std::min(kWarpSize, threads - w * kWarpSize)));
    }
    exchange_.assign(threads, 0.0);
    or_flags_.assign(threads, 0);
    for (unsigned t = 0; t < threads; ++t) {
      workers_.emplace_back([this, t] {
        thread_index.x = t;
        for (;;) {
          start_->arrive_and_wait();
          if (body_ == nullptr) return;
          (*body_)();
          done_->arrive_and_wait();
        }
      });
    }
  }

  std::mutex launch_mutex_;
  const std::function<void()>* body_ = nullptr;
  std::unique_ptr<std::barrier<>> start_, done_, block_barrier_;
  std::vector<std::unique_ptr<std::barrier<>>> warp_barriers_;
  std::vector<std::thread> workers_;
};

Grid grid;

}  // namespace

void launch(unsigned blocks, unsigned threads, const std::function<void()>& body) { grid.run(blocks, threads, body); }

void block_barrier() { grid.block().arrive_and_wait(); }

int block_barrier_or(int value) {
  grid.or_flags_[thread_index.x] = value;
  grid.block().arrive_and_wait();
  int any = 0;
  for (int f : grid.or_flags_) any |= f;
  grid.block().arrive_and_wait();
  return any;
}

double warp_exchange(double value, unsigned source_lane) {
  const unsigned warp = thread_index.x / kWarpSize;
  grid.exchange_[thread_index.x] = value;
  grid.warp(warp).arrive_and_wait();
  const double result = grid.exchange_[warp * kWarpSize + source_lane];
  grid.warp(warp).arrive_and_wait();
  return result;
}

}  // namespace sn_emulation

struct EmulatedStream {};
struct EmulatedEvent {
  std::chrono::steady_clock::time_point at;
};

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) { return e == cudaErrorMemoryAllocation ? "out of memory" : "emulated error"; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return cudaErrorInvalidDevice;
  std::strcpy(prop->name, "CUDA emulation on the CPU (SN_CUDA=EMULATE)");
  prop->major = 0;
  prop->minor = 0;
  prop->totalGlobalMem = size_t(1) << 30;
  return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr, int) {
  *value = 1;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new EmulatedStream;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t bytes) {
  // SN_EMULATION_MEMORY caps the emulated device's memory, to test out-of-memory paths.
  static const size_t cap = std::getenv("SN_EMULATION_MEMORY") ? std::strtoull(std::getenv("SN_EMULATION_MEMORY"), nullptr, 10) : 0;
  if (cap && bytes > cap) return cudaErrorMemoryAllocation;
  *p = std::malloc(bytes);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xff, bytes);  // poison: NaN for floats and doubles, so unwritten scratch shows
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new EmulatedEvent;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->at = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}
