// One batched CUDA call (cuda_backend.h, run_power_batch_cuda), in named stages:
//   layout     the batch's plan and arena layout, found again by its signature when the batch is the same
//   pack       the layer descriptors and work lists, uploaded only when they changed
//   upload     host layers' W, u and v, staged through pinned memory on the copy stream (host_transfer.h)
//   iterate    the launch chain of the mode, replayed as a CUDA graph captured once per (plan, mode, k)
//   read back  σ and the statuses (and host layers' u, v) into pinned memory with one synchronisation; then, only when
//              every layer is finite, host layers get u, v and W/σ (divided on the host from the caller's own W)
// Nothing is allocated per call once a batch has run: the arena, pinned buffers, plans and graphs are kept.
#include <algorithm>
#include <cstring>
#include <functional>
#include <type_traits>

#include "device_context.h"
#include "host_transfer.h"
#include "power_kernels.cuh"

namespace sn::cuda {
namespace {

constexpr size_t kAlign = 256;
constexpr size_t kPlansKept = 4;
constexpr size_t kGraphsPerPlan = 8;
// Longer fixed chains (2k + 3 launches) run as plain launches rather than as one graph of that many nodes.
constexpr int32_t kMaxGraphIterations = 32;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The parts of a call's launch chain that are captured as graphs.
enum class Chain : int {
  kFixed = 0,  // state reset, every iteration, the commit and the readback: a whole fixed-mode call
  kRound = 1,  // one converge-mode iteration and the readback of the batch flags
  kEnd = 2,    // the commit and the readback (converge mode)
};

// ---- layout --------------------------------------------------------------------------------------------------------

template <typename T>
bool vector_aligned(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

template <typename T>
void make_signature(const std::vector<CudaLayerBuffers<T>>& layers, bool iterated, std::vector<uint64_t>& s) {
  s.clear();
  s.push_back(sizeof(T));
  s.push_back(iterated ? 1 : 0);
  s.push_back(layers.size());
  for (const CudaLayerBuffers<T>& b : layers) {
    s.push_back(b.layout.outer);
    s.push_back(b.layout.rows);
    s.push_back(b.layout.inner);
    const bool device_out = b.on_device && b.out != nullptr;
    s.push_back((b.vector_norm ? 1u : 0u) | (device_out ? 2u : 0u) | (b.on_device ? 4u : 0u) |
                (!b.on_device || vector_aligned(b.weight) ? 8u : 0u));
  }
}

template <typename T>
ArenaLayout arena_layout(const std::vector<CudaLayerBuffers<T>>& layers, const BatchPlan& plan) {
  const size_t n = layers.size();
  ArenaLayout a;
  a.meta_begin = 0;
  a.layers = a.meta_begin;
  a.sweep = align_up(a.layers + n * sizeof(DeviceLayer<T>));
  a.reduce = align_up(a.sweep + plan.sweep.size() * sizeof(SweepItem));
  a.finish = align_up(a.reduce + plan.reduce.size() * sizeof(ReduceItem));
  a.commit = align_up(a.finish + plan.finish.size() * sizeof(FinishItem));
  a.meta_end = align_up(a.commit + plan.commit.size() * sizeof(CommitItem));
  a.state_begin = a.meta_end;
  a.states = a.state_begin;
  a.flags = align_up(a.states + n * sizeof(DeviceLayerState));
  a.counters = align_up(a.flags + sizeof(DeviceBatchFlags));
  a.state_end = align_up(a.counters + n * sizeof(uint32_t));
  a.doubles = a.state_end;
  a.staging_begin = align_up(a.doubles + plan.doubles * sizeof(double));
  a.weight_at.assign(n, 0);
  a.vectors_at.assign(n, 0);
  size_t at = a.staging_begin;
  for (size_t i = 0; i < n; ++i) {
    if (layers[i].on_device) continue;
    a.weight_at[i] = at;
    at = align_up(at + layers[i].layout.size() * sizeof(T));
  }
  a.vectors_begin = at;
  for (size_t i = 0; i < n; ++i) {
    if (layers[i].on_device || layers[i].vector_norm) continue;
    a.vectors_at[i] = at;
    at = align_up(at + (layers[i].layout.rows + layers[i].layout.cols()) * sizeof(T));
  }
  a.staging_end = at;
  a.total = at;
  return a;
}

// The batch's cached plan, or a new one (evicting the least recently used).
template <typename T>
CachedPlan& layout_stage(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, bool iterated) {
  DeviceContext& c = session.context();
  make_signature(layers, iterated, c.signature);
  for (auto& p : c.plans) {
    if (p->signature == c.signature) {
      p->last_use = ++c.clock;
      return *p;
    }
  }
  std::vector<PlanInput> inputs(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    inputs[i].layout = b.layout;
    inputs[i].vector_norm = b.vector_norm;
    inputs[i].has_out = b.on_device && b.out != nullptr;
    inputs[i].vector_loads = !b.on_device || vector_aligned(b.weight);
  }
  auto entry = std::make_unique<CachedPlan>();
  entry->signature = c.signature;
  entry->plan = plan_batch(inputs, sizeof(T), iterated, c.caps, c.tuning);
  entry->arena = arena_layout(layers, entry->plan);
  entry->last_use = ++c.clock;
  if (c.plans.size() >= kPlansKept) {
    auto oldest = std::min_element(c.plans.begin(), c.plans.end(),
                                   [](const auto& a, const auto& b) { return a->last_use < b->last_use; });
    for (CachedGraph& g : (*oldest)->graphs) cudaGraphExecDestroy(g.exec);
    c.plans.erase(oldest);
  }
  c.plans.push_back(std::move(entry));
  return *c.plans.back();
}

// ---- pack ----------------------------------------------------------------------------------------------------------

template <typename T>
void pack_stage(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, const CachedPlan& entry, char* base) {
  DeviceContext& c = session.context();
  const ArenaLayout& a = entry.arena;
  const BatchPlan& plan = entry.plan;
  c.meta_image.assign(a.meta_end - a.meta_begin, 0);
  char* image = c.meta_image.data();
  auto* doubles = reinterpret_cast<double*>(base + a.doubles);
  for (size_t i = 0; i < layers.size(); ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    const MatrixLayout& L = b.layout;
    const LayerPlan& p = plan.layers[i];
    DeviceLayer<T> d{};
    if (b.on_device) {
      d.w = b.weight;
      d.out = b.out;
      d.u = b.u;
      d.v = b.v;
    } else {
      d.w = reinterpret_cast<const T*>(base + a.weight_at[i]);
      d.out = nullptr;  // divided on the host
      d.u = b.vector_norm ? nullptr : reinterpret_cast<T*>(base + a.vectors_at[i]);
      d.v = b.vector_norm ? nullptr : d.u + L.rows;
    }
    d.x = doubles + p.x_offset;
    d.d = doubles + p.d_offset;
    d.t = doubles + p.t_offset;
    d.partial = doubles + p.partial_offset;
    d.slot_stats = doubles + p.slot_stats_offset;
    d.chunk_stats = doubles + p.chunk_stats_offset;
    d.outer = L.outer;
    d.rows = L.rows;
    d.inner = L.inner;
    d.cols = L.cols();
    d.size = L.size();
    d.tile_cols = p.tile_cols;
    d.slots = p.slots;
    d.groups = p.groups;
    d.chunks = p.chunks;
    d.vector_norm = b.vector_norm ? 1 : 0;
    std::memcpy(image + (a.layers - a.meta_begin) + i * sizeof d, &d, sizeof d);
  }
  auto put = [&](size_t offset, const auto& list) {
    if (!list.empty()) std::memcpy(image + (offset - a.meta_begin), list.data(), list.size() * sizeof(list[0]));
  };
  put(a.sweep, plan.sweep);
  put(a.reduce, plan.reduce);
  put(a.finish, plan.finish);
  put(a.commit, plan.commit);
  if (c.uploaded_arena == base && c.uploaded_meta == c.meta_image) return;  // the device holds it already
  void* staged = session.pinned(c.meta, c.meta_image.size());
  std::memcpy(staged, c.meta_image.data(), c.meta_image.size());
  SN_CUDA_CHECK(cudaMemcpyAsync(base + a.meta_begin, staged, c.meta_image.size(), cudaMemcpyHostToDevice, c.stream));
  c.uploaded_meta = c.meta_image;
  c.uploaded_arena = base;
}

// ---- upload --------------------------------------------------------------------------------------------------------

template <typename T>
void upload_stage(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, const ArenaLayout& a, char* base) {
  std::vector<StagedPiece> pieces;
  for (size_t i = 0; i < layers.size(); ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    if (b.on_device) continue;
    pieces.push_back({a.weight_at[i] - a.staging_begin, const_cast<T*>(b.weight), b.layout.size() * sizeof(T)});
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    if (b.on_device || b.vector_norm) continue;
    const size_t at = a.vectors_at[i] - a.staging_begin;
    pieces.push_back({at, b.u, b.layout.rows * sizeof(T)});
    pieces.push_back({at + b.layout.rows * sizeof(T), b.v, b.layout.cols() * sizeof(T)});
  }
  upload_image(session, base + a.staging_begin, a.staging_end - a.staging_begin, pieces);
}

// ---- iterate -------------------------------------------------------------------------------------------------------

// Everything one call's launches need: the arena's pieces, the options and the pinned readback.
template <typename T>
struct Chains {
  cudaStream_t stream;
  const BatchPlan& plan;
  const ArenaLayout& a;
  char* base;
  const PowerOptions& options;
  bool mixed;
  char* readback;  // pinned: states, then flags
  char* vectors;   // pinned: host layers' u and v
  uint32_t slots_per_group;

  const DeviceLayer<T>* layers() const { return reinterpret_cast<const DeviceLayer<T>*>(base + a.layers); }
  DeviceLayerState* states() const { return reinterpret_cast<DeviceLayerState*>(base + a.states); }
  DeviceBatchFlags* flags() const { return reinterpret_cast<DeviceBatchFlags*>(base + a.flags); }
  size_t states_bytes() const { return plan.layers.size() * sizeof(DeviceLayerState); }

  void begin() const { SN_CUDA_CHECK(cudaMemsetAsync(base + a.state_begin, 0, a.state_end - a.state_begin, stream)); }

  void iteration(SweepMode sweep, FinishMode finish, bool last) const {
    for (const SweepLaunch& launch : plan.launches) {
      launch_sweep<T>(launch, layers(), states(), flags(), reinterpret_cast<const SweepItem*>(base + a.sweep), sweep,
                      mixed, options.eps, stream);
    }
    if (sweep != SweepMode::kMatvec) {
      launch_reduce<T>(layers(), states(), reinterpret_cast<const ReduceItem*>(base + a.reduce), plan.reduce.size(),
                       slots_per_group, stream);
    }
    KernelParams params{options.eps, options.tolerance, options.iterations, last ? 1 : 0, slots_per_group, 0};
    launch_finish<T>(layers(), states(), flags(), reinterpret_cast<uint32_t*>(base + a.counters),
                     reinterpret_cast<const FinishItem*>(base + a.finish), plan.finish.size(), finish, params, stream);
  }

  // Every iteration of a fixed-mode call.
  void fixed() const {
    const int32_t k = options.iterations;
    if (k == 0) {
      iteration(SweepMode::kMatvec, FinishMode::kEval, true);
    } else if (options.legacy) {
      iteration(SweepMode::kAccumulate, FinishMode::kLegacyFirstV, false);
      for (int32_t j = 0; j < k; ++j) {
        const bool last = j + 1 == k;
        iteration(last ? SweepMode::kMatvec : SweepMode::kSweep, FinishMode::kLegacy, last);
      }
    } else {
      for (int32_t j = 0; j < k; ++j) iteration(SweepMode::kSweep, FinishMode::kDefault, j + 1 == k);
    }
  }

  void round() const {
    iteration(SweepMode::kSweep, FinishMode::kConverge, false);
    SN_CUDA_CHECK(
        cudaMemcpyAsync(readback + states_bytes(), flags(), sizeof(DeviceBatchFlags), cudaMemcpyDeviceToHost, stream));
  }

  // The commit, then σ, the statuses and the flags, and host layers' u and v, into pinned memory.
  void end() const {
    const auto* items = reinterpret_cast<const CommitItem*>(base + a.commit);
    launch_commit<T>(layers(), states(), flags(), items, plan.vector_items, plan.commit.size() - plan.vector_items,
                     plan.divide_blocks, stream);
    SN_CUDA_CHECK(cudaMemcpyAsync(readback, states(), states_bytes(), cudaMemcpyDeviceToHost, stream));
    SN_CUDA_CHECK(
        cudaMemcpyAsync(readback + states_bytes(), flags(), sizeof(DeviceBatchFlags), cudaMemcpyDeviceToHost, stream));
    if (a.staging_end > a.vectors_begin) {
      SN_CUDA_CHECK(cudaMemcpyAsync(vectors, base + a.vectors_begin, a.staging_end - a.vectors_begin,
                                    cudaMemcpyDeviceToHost, stream));
    }
  }
};

// Runs `enqueue` on the stream: as the cached graph for `key`, captured on first use; or as plain launches.
void run_chain(Session& session, CachedPlan& entry, const GraphKey& key, bool use_graph,
               const std::function<void()>& enqueue) {
  DeviceContext& c = session.context();
  if (!use_graph || !c.graphs) {
    enqueue();
    return;
  }
  for (CachedGraph& g : entry.graphs) {
    if (g.key == key) {
      g.last_use = ++c.clock;
      SN_CUDA_CHECK(cudaGraphLaunch(g.exec, c.stream));
      return;
    }
  }
  SN_CUDA_CHECK(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeThreadLocal));
  cudaGraph_t graph = nullptr;
  try {
    enqueue();
  } catch (...) {
    if (cudaStreamEndCapture(c.stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    throw;
  }
  SN_CUDA_CHECK(cudaStreamEndCapture(c.stream, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  SN_CUDA_CHECK(instantiated);
  if (entry.graphs.size() >= kGraphsPerPlan) {
    auto oldest = std::min_element(entry.graphs.begin(), entry.graphs.end(),
                                   [](const CachedGraph& a, const CachedGraph& b) { return a.last_use < b.last_use; });
    cudaGraphExecDestroy(oldest->exec);
    entry.graphs.erase(oldest);
  }
  entry.graphs.push_back({key, exec, ++c.clock});
  SN_CUDA_CHECK(cudaGraphLaunch(exec, c.stream));
}

template <typename T>
void iterate_stage(Session& session, CachedPlan& entry, const Chains<T>& chains, size_t matrices) {
  const PowerOptions& o = chains.options;
  GraphKey key;
  key.iterations = o.iterations;
  key.legacy = o.legacy ? 1 : 0;
  key.mixed = chains.mixed ? 1 : 0;
  key.eps = o.eps;
  key.tolerance = o.tolerance;
  if (o.tolerance < 0) {
    key.chain = static_cast<int>(Chain::kFixed);
    run_chain(session, entry, key, o.iterations <= kMaxGraphIterations, [&] {
      chains.begin();
      chains.fixed();
      chains.end();
    });
    return;
  }
  // Converge mode: one round per iteration until every layer settled; at most one extra round for the rescaled retry
  // of a first iteration. The count of finished layers comes back after each round.
  chains.begin();
  key.chain = static_cast<int>(Chain::kRound);
  for (int64_t round = 0; round <= static_cast<int64_t>(o.iterations); ++round) {
    run_chain(session, entry, key, true, [&] { chains.round(); });
    SN_CUDA_CHECK(cudaStreamSynchronize(chains.stream));
    DeviceBatchFlags flags;
    std::memcpy(&flags, chains.readback + chains.states_bytes(), sizeof flags);
    if (static_cast<size_t>(flags.done) >= matrices) break;
  }
  key.chain = static_cast<int>(Chain::kEnd);
  run_chain(session, entry, key, true, [&] { chains.end(); });
}

// ---- read back -----------------------------------------------------------------------------------------------------

template <typename T>
bool read_back_stage(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, const PowerOptions& options,
                     const Chains<T>& chains, std::vector<LayerResult>& results) {
  SN_CUDA_CHECK(cudaStreamSynchronize(chains.stream));
  const size_t n = layers.size();
  const bool converge = options.tolerance >= 0;
  const bool iterated = converge || options.iterations > 0;
  results.assign(n, LayerResult{});
  bool all_finite = true;
  for (size_t i = 0; i < n; ++i) {
    DeviceLayerState s;
    std::memcpy(&s, chains.readback + i * sizeof s, sizeof s);
    LayerResult& r = results[i];
    r.sigma = s.sigma;
    r.status = s.status;
    r.converged = s.converged != 0;
    r.iterations_run = layers[i].vector_norm ? 0 : converge ? s.iterations_run : options.iterations;
    if (r.status == LayerStatus::kNonFinite) all_finite = false;
  }
  if (!all_finite) return false;  // the commit kernel wrote nothing, and no host array is touched

  // Host layers: u, v and W/σ only now, so a failure above leaves the caller's arrays as they were.
  const ArenaLayout& a = chains.a;
  std::vector<CopyPiece> copies;
  std::vector<HostDivision<T>> divisions;
  for (size_t i = 0; i < n; ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    if (b.on_device) continue;
    const LayerStatus status = results[i].status;
    if (iterated && !b.vector_norm && status == LayerStatus::kNormalized) {
      const char* at = chains.vectors + (a.vectors_at[i] - a.vectors_begin);
      copies.push_back({b.u, at, b.layout.rows * sizeof(T)});
      copies.push_back({b.v, at + b.layout.rows * sizeof(T), b.layout.cols() * sizeof(T)});
    }
    if (b.out) {
      const bool normalized = status == LayerStatus::kNormalized;
      divisions.push_back({b.weight, b.out, b.layout.size(), static_cast<T>(results[i].sigma), !normalized});
    }
  }
  if (!copies.empty()) parallel_copy(session.copier(), copies);
  if (!divisions.empty()) divide_on_host(session.copier(), divisions);
  return true;
}

template <typename T>
bool run_batch(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, const PowerOptions& options,
               std::vector<LayerResult>& results) {
  DeviceContext& c = session.context();
  const bool iterated = options.tolerance >= 0 || options.iterations > 0;
  CachedPlan& entry = layout_stage(session, layers, iterated);
  char* base = session.arena(std::max<size_t>(entry.arena.total, 1));
  const size_t states_bytes = layers.size() * sizeof(DeviceLayerState);
  char* readback = static_cast<char*>(session.pinned(c.readback, states_bytes + sizeof(DeviceBatchFlags)));
  const size_t vectors_bytes = entry.arena.staging_end - entry.arena.vectors_begin;
  char* vectors = static_cast<char*>(session.pinned(c.vectors, std::max<size_t>(vectors_bytes, 1)));
  pack_stage(session, layers, entry, base);
  upload_stage(session, layers, entry.arena, base);
  const bool mixed = std::is_same_v<T, float> && options.precision == Precision::kMixed;
  const Chains<T> chains{
      c.stream, entry.plan, entry.arena, base, options, mixed, readback, vectors, c.tuning.slots_per_group};
  size_t matrices = 0;
  for (const CudaLayerBuffers<T>& b : layers) matrices += b.vector_norm ? 0 : 1;
  iterate_stage(session, entry, chains, matrices);
  return read_back_stage(session, layers, options, chains, results);
}

}  // namespace

template <typename T>
bool run_power_batch_cuda(int device, const std::vector<CudaLayerBuffers<T>>& layers, const PowerOptions& options,
                          std::vector<LayerResult>& results) {
  Session session(device);
  return session.run([&] { return run_batch(session, layers, options, results); });
}

template bool run_power_batch_cuda<float>(int, const std::vector<CudaLayerBuffers<float>>&, const PowerOptions&,
                                          std::vector<LayerResult>&);
template bool run_power_batch_cuda<double>(int, const std::vector<CudaLayerBuffers<double>>&, const PowerOptions&,
                                           std::vector<LayerResult>&);

}  // namespace sn::cuda
