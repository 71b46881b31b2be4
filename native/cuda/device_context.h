#pragma once
// The CUDA backend's per-device state, internal to native/cuda: streams, the scratch arena, pinned staging and
// readback buffers, the plans and CUDA graphs cached from call to call, the host copy threads, and the sticky-error
// state; and Session, which holds a device's context for one call. device_context.cu implements them and the
// lifecycle of cuda_backend.h (acquire_user, release_user, resource_counts).
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "batch_plan.h"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "host_copier.h"

namespace sn::cuda {

constexpr int kRingSlots = 3;  // staging chunks: one filled by the host while up to two are in flight

// Pinned host memory that grows and never shrinks.
struct PinnedBuffer {
  void* data = nullptr;
  size_t bytes = 0;
};

// Which part of a call's launch chain a graph holds, and everything baked into its launches.
struct GraphKey {
  int chain = 0;  // batch_run.cu: Chain
  int32_t iterations = 0;
  int32_t legacy = 0;
  int32_t mixed = 0;
  double eps = 0;
  double tolerance = 0;
  bool operator==(const GraphKey& o) const {
    return chain == o.chain && iterations == o.iterations && legacy == o.legacy && mixed == o.mixed && eps == o.eps &&
           tolerance == o.tolerance;
  }
};

struct CachedGraph {
  GraphKey key;
  cudaGraphExec_t exec = nullptr;
  uint64_t last_use = 0;
};

// Byte offsets, from the arena's base, of what a call of one plan keeps there.
struct ArenaLayout {
  size_t meta_begin = 0, layers = 0, sweep = 0, reduce = 0, finish = 0, commit = 0, meta_end = 0;
  size_t state_begin = 0, states = 0, flags = 0, counters = 0, state_end = 0;
  size_t doubles = 0;
  size_t staging_begin = 0, vectors_begin = 0, staging_end = 0;  // host layers: weights, then u and v
  size_t total = 0;
  std::vector<size_t> weight_at;   // per layer: its staged weight (host layers)
  std::vector<size_t> vectors_at;  // per layer: its staged u, then v (host matrix layers)
};

// A batch's plan as the context last used it: found again by its signature (shapes, flags, dtype), with the graphs
// captured for it.
struct CachedPlan {
  std::vector<uint64_t> signature;
  BatchPlan plan;
  ArenaLayout arena;
  std::vector<CachedGraph> graphs;
  uint64_t last_use = 0;
};

struct DeviceContext {
  explicit DeviceContext(int index) : device(index) {}

  const int device;
  std::mutex mutex;
  bool ready = false;                  // streams, events and caps made; false again after release()
  cudaStream_t stream = nullptr;       // kernels, and everything a call orders after them
  cudaStream_t copy_stream = nullptr;  // staged copies between host and device
  cudaEvent_t handoff = nullptr;       // orders one of the two streams after the other
  cudaEvent_t slot_free[kRingSlots] = {};
  DeviceCaps caps;
  PlanTuning tuning;
  bool graphs = true;  // CUDA graphs are used (SN_CUDA_GRAPHS=0 turns them off)
  void* arena = nullptr;
  size_t arena_bytes = 0;
  PinnedBuffer ring;  // kRingSlots staging chunks of chunk_bytes
  size_t chunk_bytes = 0;
  PinnedBuffer meta;      // the plan's descriptors and work lists on their way up
  PinnedBuffer readback;  // states and flags coming back
  PinnedBuffer vectors;   // host layers' u and v coming back
  std::vector<std::unique_ptr<CachedPlan>> plans;
  uint64_t clock = 0;
  std::vector<char> meta_image;     // this call's descriptors and work lists
  std::vector<char> uploaded_meta;  // what the arena holds
  const void* uploaded_arena = nullptr;
  std::vector<uint64_t> signature;  // this call's, reused
  std::unique_ptr<HostCopier> copier;
  std::string sticky;  // set after a sticky error: the device is unusable from then on

  size_t graph_count() const;
  void drop_graphs() noexcept;  // after the arena or a pinned buffer a graph uses moved
  void release() noexcept;      // frees everything (after synchronising); a later call sets it up again
};

// The context of `device`, made on first use. Throws BackendError when no such device exists.
DeviceContext& context_for(int device);

// The number of CUDA devices, or 0 with the reason.
int device_count(std::string* reason);

// Holds a device's context for one call: locked, current, set up. Any CUDA error thrown inside run() becomes a
// BackendError; a sticky one marks the device unusable.
class Session {
 public:
  explicit Session(int device);

  template <typename F>
  auto run(F&& body) -> decltype(body()) {
    try {
      return body();
    } catch (const CudaError& e) {
      cudaGetLastError();  // clear a non-sticky error, so the next call starts clean
      if (is_sticky(e.code())) context_.sticky = e.what();
      throw BackendError(e.what(), e.out_of_memory());
    }
  }

  DeviceContext& context() { return context_; }
  cudaStream_t stream() const { return context_.stream; }

  // The arena, grown (never shrunk) to at least `bytes`; the old one is freed first, so a failure leaves none and the
  // next call tries again. Graphs and the uploaded plan go with the old arena.
  char* arena(size_t bytes);
  // A pinned buffer grown to at least `bytes`; graphs that copied into the old one are dropped.
  void* pinned(PinnedBuffer& buffer, size_t bytes);
  // The staging ring, sized to the configured chunk.
  void ensure_ring();
  HostCopier& copier();

 private:
  DeviceContext& context_;
  std::unique_lock<std::mutex> lock_;
};

// The staging chunk size the next ring allocation uses (set_staging_chunk_bytes, else 8 MiB).
size_t staging_chunk_bytes();

// The device-array byte count of resource_counts(), kept by device_allocate and device_free.
void count_device_array_bytes(std::ptrdiff_t delta);

// The most SMs' worth of a cluster of the largest tiled sweep the device can hold, as a power of two ≤ limit
// (power_kernels.cu: it needs the kernel).
uint32_t largest_cluster(int device, uint32_t limit);

}  // namespace sn::cuda
