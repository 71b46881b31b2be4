// Per-device contexts and the lifecycle of the CUDA backend (device_context.h, cuda_backend.h): the registry, the
// users that keep it alive, setting a context up (streams, events, device caps, tuning), growing its arena and pinned
// buffers, and freeing it all when the last user goes.
#include "device_context.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "power_kernels.cuh"

#ifndef SN_CUDA_MAX_CLUSTER
#define SN_CUDA_MAX_CLUSTER 8  // the portable cluster limit; the CPU emulation builds with fewer
#endif

namespace sn::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw CudaError(std::string("spectral-norm: CUDA call ") + call + " failed at " + (base ? base + 1 : file) + ":" +
                      std::to_string(line) + ": " + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")",
                  code);
}

namespace {

constexpr size_t kDefaultChunkBytes = size_t(8) << 20;

// Never destroyed: a static destructor would run after the CUDA runtime is gone. Contexts are released, not deleted,
// so a Session that waited on a context's mutex never holds a dangling reference.
struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<DeviceContext>> contexts;
  size_t users = 0;
};
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

std::atomic<size_t> chunk_setting{0};
std::atomic<std::ptrdiff_t> device_array_total{0};

// SN_CUDA_TUNING="blocksPerSm=4,minRowsPerSlot=48,…" (docs/cuda.md): tuning runs on a GPU, without a rebuild.
void apply_tuning(const char* text, PlanTuning& t, uint32_t& max_cluster) {
  const std::string s(text);
  size_t at = 0;
  while (at < s.size()) {
    const size_t end = std::min(s.find(',', at), s.size());
    const std::string entry = s.substr(at, end - at);
    at = end + 1;
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    const std::string key = entry.substr(0, eq);
    const long value = eq == std::string::npos ? -1 : std::strtol(entry.c_str() + eq + 1, nullptr, 10);
    if (value < 1)
      throw BackendError("spectral-norm: SN_CUDA_TUNING entry '" + entry + "' needs a positive integer", false);
    const auto v = static_cast<uint32_t>(std::min<long>(value, 1L << 30));
    if (key == "blocksPerSm") t.blocks_per_sm = v;
    else if (key == "minRowsPerSlot") t.min_rows_per_slot = v;
    else if (key == "slotsPerGroup") t.slots_per_group = std::max<uint32_t>(2, v);
    else if (key == "finishColumnsPerThread") t.finish_columns_per_thread = v;
    else if (key == "divideElements") t.divide_elements = v;
    else if (key == "divideBlocksPerSm") t.divide_blocks_per_sm = v;
    else if (key == "maxUnits") t.max_units = v;
    else if (key == "maxCluster") max_cluster = std::min(max_cluster, v);
    else throw BackendError("spectral-norm: SN_CUDA_TUNING has an unknown key '" + key + "'", false);
  }
}

void free_pinned(PinnedBuffer& b) noexcept {
  if (b.data) cudaFreeHost(b.data);
  b = PinnedBuffer{};
}

void setup(DeviceContext& c) {
  SN_CUDA_CHECK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  SN_CUDA_CHECK(cudaStreamCreateWithFlags(&c.copy_stream, cudaStreamNonBlocking));
  SN_CUDA_CHECK(cudaEventCreateWithFlags(&c.handoff, cudaEventDisableTiming));
  for (cudaEvent_t& e : c.slot_free) SN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  int sms = 1;
  SN_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c.device));
  c.caps.multiprocessors = static_cast<uint32_t>(std::max(1, sms));
  c.caps.block_threads = block_threads();
  c.tuning = PlanTuning{};
  uint32_t max_cluster = SN_CUDA_MAX_CLUSTER;
  if (const char* tuning = std::getenv("SN_CUDA_TUNING")) apply_tuning(tuning, c.tuning, max_cluster);
  prepare_kernels();  // before largest_cluster: its occupancy query needs the raised shared-memory limit
  c.caps.max_cluster = largest_cluster(c.device, max_cluster);
  const char* graphs = std::getenv("SN_CUDA_GRAPHS");
  c.graphs = !(graphs && std::strcmp(graphs, "0") == 0);
  c.ready = true;
}

}  // namespace

size_t DeviceContext::graph_count() const {
  size_t n = 0;
  for (const auto& p : plans) n += p->graphs.size();
  return n;
}

void DeviceContext::drop_graphs() noexcept {
  for (auto& p : plans) {
    for (CachedGraph& g : p->graphs) cudaGraphExecDestroy(g.exec);
    p->graphs.clear();
  }
}

void DeviceContext::release() noexcept {
  if (!ready && arena == nullptr) return;
  cudaSetDevice(device);
  if (stream) cudaStreamSynchronize(stream);
  if (copy_stream) cudaStreamSynchronize(copy_stream);
  drop_graphs();
  plans.clear();
  if (arena) cudaFree(arena);
  arena = nullptr;
  arena_bytes = 0;
  free_pinned(ring);
  free_pinned(meta);
  free_pinned(readback);
  free_pinned(vectors);
  chunk_bytes = 0;
  if (handoff) cudaEventDestroy(handoff);
  handoff = nullptr;
  for (cudaEvent_t& e : slot_free) {
    if (e) cudaEventDestroy(e);
    e = nullptr;
  }
  if (stream) cudaStreamDestroy(stream);
  if (copy_stream) cudaStreamDestroy(copy_stream);
  stream = copy_stream = nullptr;
  copier.reset();
  meta_image = {};
  uploaded_meta = {};
  uploaded_arena = nullptr;
  signature = {};
  cudaGetLastError();  // best effort: after a sticky error these calls fail, and there is nothing left to do
  ready = false;
}

int device_count(std::string* reason) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (reason) *reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status);
    return 0;
  }
  if (count == 0 && reason) *reason = "the CUDA runtime found no device";
  return count;
}

DeviceContext& context_for(int device) {
  std::string reason;
  const int count = device_count(&reason);
  if (count == 0) throw BackendError("spectral-norm: no CUDA device is usable: " + reason, false);
  if (device < 0 || device >= count) {
    throw BackendError("spectral-norm: CUDA device " + std::to_string(device) + " does not exist (" +
                           std::to_string(count) + " found)",
                       false);
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.contexts.size() < static_cast<size_t>(count)) r.contexts.resize(count);
  if (!r.contexts[device]) r.contexts[device] = std::make_unique<DeviceContext>(device);
  return *r.contexts[device];
}

Session::Session(int device) : context_(context_for(device)), lock_(context_.mutex) {
  if (!context_.sticky.empty()) {
    throw BackendError("spectral-norm: the CUDA device is unusable after an earlier error: " + context_.sticky, false);
  }
  run([&] {
    SN_CUDA_CHECK(cudaSetDevice(device));
    if (!context_.ready) {
      try {
        setup(context_);
      } catch (...) {
        context_.release();
        throw;
      }
    }
  });
}

char* Session::arena(size_t bytes) {
  DeviceContext& c = context_;
  if (bytes > c.arena_bytes) {
    c.drop_graphs();
    c.uploaded_arena = nullptr;
    c.uploaded_meta.clear();
    if (c.arena) {
      SN_CUDA_CHECK(cudaStreamSynchronize(c.stream));
      SN_CUDA_CHECK(cudaStreamSynchronize(c.copy_stream));
      SN_CUDA_CHECK(cudaFree(c.arena));
      c.arena = nullptr;
      c.arena_bytes = 0;
    }
    SN_CUDA_CHECK(cudaMalloc(&c.arena, bytes));
    c.arena_bytes = bytes;
  }
  return static_cast<char*>(c.arena);
}

void* Session::pinned(PinnedBuffer& buffer, size_t bytes) {
  if (bytes > buffer.bytes) {
    DeviceContext& c = context_;
    c.drop_graphs();
    if (buffer.data) {
      SN_CUDA_CHECK(cudaStreamSynchronize(c.stream));
      SN_CUDA_CHECK(cudaStreamSynchronize(c.copy_stream));
      free_pinned(buffer);
    }
    const size_t grown = std::max(bytes, size_t(4096));
    SN_CUDA_CHECK(cudaHostAlloc(&buffer.data, grown, cudaHostAllocDefault));
    buffer.bytes = grown;
  }
  return buffer.data;
}

void Session::ensure_ring() {
  DeviceContext& c = context_;
  const size_t chunk = staging_chunk_bytes();
  if (c.chunk_bytes == chunk && c.ring.data) return;
  if (c.ring.data) {
    SN_CUDA_CHECK(cudaStreamSynchronize(c.copy_stream));
    free_pinned(c.ring);
  }
  c.chunk_bytes = 0;
  SN_CUDA_CHECK(cudaHostAlloc(&c.ring.data, chunk * kRingSlots, cudaHostAllocDefault));
  c.ring.bytes = chunk * kRingSlots;
  c.chunk_bytes = chunk;
}

HostCopier& Session::copier() {
  if (!context_.copier) context_.copier = std::make_unique<HostCopier>(HostCopier::default_threads());
  return *context_.copier;
}

size_t staging_chunk_bytes() {
  const size_t set = chunk_setting.load();
  return set ? set : kDefaultChunkBytes;
}

void set_staging_chunk_bytes(size_t bytes) {
  chunk_setting.store(bytes == 0 ? 0 : std::max<size_t>(4096, (bytes + 4095) / 4096 * 4096));
}

void count_device_array_bytes(std::ptrdiff_t delta) { device_array_total += delta; }

std::string device_unusable_reason(int device) {
  std::string reason;
  const int count = device_count(&reason);
  if (count == 0) return reason;
  if (device < 0 || device >= count) return "CUDA device " + std::to_string(device) + " does not exist";
  DeviceContext& context = context_for(device);
  std::lock_guard<std::mutex> lock(context.mutex);
  return context.sticky;
}

void acquire_user() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  ++r.users;
}

void release_user() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (r.users == 0 || --r.users > 0) return;
  for (auto& c : r.contexts) {
    if (!c) continue;
    std::lock_guard<std::mutex> hold(c->mutex);  // waits for a call still running on it
    c->release();
  }
}

ResourceCounts resource_counts() {
  ResourceCounts counts;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  counts.users = r.users;
  for (auto& c : r.contexts) {
    if (!c) continue;
    std::lock_guard<std::mutex> hold(c->mutex);
    if (c->ready) ++counts.contexts;
    counts.arena_bytes += c->arena_bytes;
    counts.pinned_bytes += c->ring.bytes + c->meta.bytes + c->readback.bytes + c->vectors.bytes;
    counts.graphs += c->graph_count();
  }
  counts.device_array_bytes = static_cast<size_t>(std::max<std::ptrdiff_t>(0, device_array_total.load()));
  return counts;
}

}  // namespace sn::cuda
