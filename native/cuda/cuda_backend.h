#pragma once
// The CUDA backend's host side: one context per device (streams, scratch arena, pinned staging, cached plans and
// graphs, sticky-error state), batched calls with all-or-nothing commits, device allocations for weights that stay on
// the GPU, the probe the 'auto' cost model measures, and the lifecycle that frees it all when the last Node.js
// environment using CUDA ends. Knows nothing of Node. Implemented by the .cu files beside it, or by
// cuda_backend_unavailable.cpp in a build without the CUDA toolkit, where every entry point throws.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/matrix_layout.h"
#include "../common/power_contract.h"

namespace sn::cuda {

// A failure of the CUDA runtime or the device: the message names the call, file, line and CUDA error name.
class BackendError : public std::runtime_error {
 public:
  BackendError(const std::string& message, bool out_of_memory)
      : std::runtime_error(message), out_of_memory_(out_of_memory) {}
  bool out_of_memory() const { return out_of_memory_; }

 private:
  bool out_of_memory_;
};

// One layer of a CUDA call. Either every pointer is host memory (copied in through pinned staging; W/σ computed on
// the host once the batch is known to be finite) or every pointer is device memory from device_allocate (used in
// place).
template <typename T>
struct CudaLayerBuffers {
  const T* weight = nullptr;
  T* out = nullptr;  // nullptr: no division; may equal weight
  T* u = nullptr;
  T* v = nullptr;
  MatrixLayout layout;
  bool vector_norm = false;
  bool on_device = false;
};

// Runs a job on `device` with the CPU backend's semantics (PowerOptions.threads is ignored). Returns false, having
// modified nothing, when some layer is non-finite. Throws BackendError, with nothing modified, on out of memory or
// any CUDA error; after a sticky error the device is unusable and every later call throws at once.
template <typename T>
bool run_power_batch_cuda(int device, const std::vector<CudaLayerBuffers<T>>& layers, const PowerOptions& options,
                          std::vector<LayerResult>& results);

extern template bool run_power_batch_cuda<float>(int, const std::vector<CudaLayerBuffers<float>>&, const PowerOptions&,
                                                 std::vector<LayerResult>&);
extern template bool run_power_batch_cuda<double>(int, const std::vector<CudaLayerBuffers<double>>&,
                                                  const PowerOptions&, std::vector<LayerResult>&);

// Why `device` cannot run a job, or "" when it can (a device exists and no sticky error happened on it).
std::string device_unusable_reason(int device);

// Device memory for weights and vectors kept on the GPU. Each call is ordered after every job on the device; the
// copies go through the pinned staging buffers. device_free needs no context, so it works after release_user too.
void* device_allocate(int device, size_t bytes);
void device_free(int device, void* pointer, size_t bytes) noexcept;
void copy_to_device(int device, void* destination, const void* source, size_t bytes);
void copy_from_device(int device, void* destination, const void* source, size_t bytes);

// What the 'auto' cost model needs of a device, measured in a few milliseconds (binding.d.ts, CudaProbe): pinned
// host↔device bandwidth through the staging buffers (DMA only, one staging chunk), the wall time of launching an
// empty kernel and synchronising, and the device-to-device copy bandwidth (read + write).
struct ProbeResult {
  double host_to_device_bytes_per_second = 0;
  double device_to_host_bytes_per_second = 0;
  double launch_seconds = 0;
  double device_copy_bytes_per_second = 0;
};
ProbeResult probe_device(int device);

// Lifecycle. Each Node.js environment that uses CUDA acquires once and releases at its teardown; when the last one
// releases, every device context is freed (arena, pinned buffers, graphs, streams, copy threads), so a process or a
// worker that exits leaves no device or pinned memory behind.
void acquire_user();
void release_user();

struct ResourceCounts {
  size_t users = 0;
  size_t contexts = 0;
  size_t arena_bytes = 0;         // device scratch held by the contexts
  size_t pinned_bytes = 0;        // pinned host staging held by the contexts
  size_t graphs = 0;              // instantiated CUDA graphs cached
  size_t device_array_bytes = 0;  // device_allocate'd and not yet freed
};
ResourceCounts resource_counts();

// Tests: the staging chunk size (bytes, rounded to 4 KiB; 0 restores the default), so small jobs cross chunks.
void set_staging_chunk_bytes(size_t bytes);

}  // namespace sn::cuda

namespace sn::cuda {

// Benchmarks: the device-to-device copy bandwidth in bytes/s (read + write), median of `repeats` copies of `bytes`,
// timed with CUDA events on the device's stream.
double copy_bandwidth(int device, size_t bytes, int repeats);

// Benchmarks: the streaming read bandwidth of the device in bytes/s, median of `repeats` reads of `bytes`.
double read_bandwidth_device(int device, size_t bytes, int repeats);

// Benchmarks: CUDA events on the device's stream, so a run of steps is timed as the GPU saw it.
class StreamTimer {
 public:
  explicit StreamTimer(int device);  // records the start event
  ~StreamTimer();
  double stop_ms();  // records the stop event, waits for it, and returns the elapsed milliseconds

 private:
  int device_;
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

}  // namespace sn::cuda
