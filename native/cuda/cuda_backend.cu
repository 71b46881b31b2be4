// The CUDA backend's host side (cuda_backend.h): per-device contexts, the scratch arena, one batched call as a chain
// of sweep/finish launches and one commit (power_kernels.cuh), and allocations and copies for weights kept on the GPU.
#include "cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "batch_plan.h"
#include "cuda_check.h"
#include "power_kernels.cuh"

namespace sn::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw CudaError(std::string("spectral-norm: CUDA call ") + call + " failed at " + (base ? base + 1 : file) + ":" +
                      std::to_string(line) + ": " + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")",
                  code);
}

namespace {

// One per device: calls on a device are serialised on its stream, so sync and async calls (on libuv's threads)
// never interleave, and the scratch arena is reused from call to call.
struct DeviceContext {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  void* arena = nullptr;
  size_t arena_bytes = 0;
  std::string sticky;  // set after a sticky error: the device is unusable from then on
};

std::mutex contexts_mutex;
std::vector<std::unique_ptr<DeviceContext>> contexts;

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
                           std::to_string(count) + " found)", false);
  }
  std::lock_guard<std::mutex> lock(contexts_mutex);
  if (contexts.size() < static_cast<size_t>(count)) contexts.resize(count);
  if (!contexts[device]) contexts[device] = std::make_unique<DeviceContext>();
  return *contexts[device];
}

// Holds a device's context for one call: locked, current, with its stream. Any CUDA error thrown inside is turned
// into a BackendError by run(), which also marks the device unusable after a sticky error.
class Session {
 public:
  explicit Session(int device) : context_(context_for(device)), lock_(context_.mutex) {
    if (!context_.sticky.empty()) {
      throw BackendError("spectral-norm: the CUDA device is unusable after an earlier error: " + context_.sticky, false);
    }
    run([&] {
      SN_CUDA_CHECK(cudaSetDevice(device));
      if (context_.stream == nullptr) {
        SN_CUDA_CHECK(cudaStreamCreateWithFlags(&context_.stream, cudaStreamNonBlocking));
      }
    });
  }

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

  // The scratch arena, grown (never shrunk) to at least `bytes`; the old one is freed first, so a failure leaves
  // none and the next call tries again.
  char* arena(size_t bytes) {
    if (bytes > context_.arena_bytes) {
      if (context_.arena) {
        SN_CUDA_CHECK(cudaStreamSynchronize(context_.stream));
        SN_CUDA_CHECK(cudaFree(context_.arena));
        context_.arena = nullptr;
        context_.arena_bytes = 0;
      }
      SN_CUDA_CHECK(cudaMalloc(&context_.arena, bytes));
      context_.arena_bytes = bytes;
    }
    return static_cast<char*>(context_.arena);
  }

  cudaStream_t stream() const { return context_.stream; }

 private:
  DeviceContext& context_;
  std::lock_guard<std::mutex> lock_;
};

constexpr size_t kAlign = 256;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of everything one call keeps in the arena.
struct ArenaLayout {
  size_t doubles, elements, staging, layers, states, counters, flags, sweep, finish, commit, meta_begin, total;
};

template <typename T>
bool run_batch(Session& session, const std::vector<CudaLayerBuffers<T>>& layers, const PowerOptions& options,
               std::vector<LayerResult>& results) {
  const size_t n = layers.size();
  const bool converge = options.tolerance >= 0;
  const bool iterated = converge || options.iterations > 0;
  std::vector<PlanInput> inputs(n);
  for (size_t i = 0; i < n; ++i) inputs[i] = {layers[i].layout, layers[i].vector_norm, layers[i].out != nullptr};
  const BatchPlan plan = plan_batch(inputs, sizeof(T), iterated);

  // Host layers are staged in the arena: their weight (divided there in place), u and v.
  std::vector<size_t> staged(n, 0);
  size_t staging_elements = 0;
  for (size_t i = 0; i < n; ++i) {
    if (layers[i].on_device) continue;
    staged[i] = staging_elements;
    staging_elements += layers[i].layout.size() + layers[i].layout.rows + layers[i].layout.cols();
  }
  ArenaLayout a{};
  a.doubles = 0;
  a.elements = align_up(a.doubles + plan.doubles * sizeof(double));
  a.staging = align_up(a.elements + plan.elements * sizeof(T));
  a.meta_begin = align_up(a.staging + staging_elements * sizeof(T));
  a.layers = a.meta_begin;
  a.states = align_up(a.layers + n * sizeof(DeviceLayer<T>));
  a.counters = align_up(a.states + n * sizeof(DeviceLayerState));
  a.flags = align_up(a.counters + n * sizeof(uint32_t));
  a.sweep = align_up(a.flags + sizeof(DeviceBatchFlags));
  a.finish = align_up(a.sweep + plan.sweep.size() * sizeof(SweepItem));
  a.commit = align_up(a.finish + plan.finish.size() * sizeof(FinishItem));
  a.total = align_up(a.commit + plan.commit.size() * sizeof(CommitItem));

  char* base = session.arena(a.total);
  cudaStream_t stream = session.stream();
  double* doubles = reinterpret_cast<double*>(base + a.doubles);
  T* elements = reinterpret_cast<T*>(base + a.elements);
  T* staging = reinterpret_cast<T*>(base + a.staging);

  // Everything but the vectors' scratch goes up in one copy: descriptors, states, counters, flags, work lists.
  std::vector<char> meta(a.total - a.meta_begin, 0);
  auto at = [&](size_t offset) { return meta.data() + (offset - a.meta_begin); };
  auto* device_layers = reinterpret_cast<DeviceLayer<T>*>(at(a.layers));
  auto* states = reinterpret_cast<DeviceLayerState*>(at(a.states));
  size_t matrices = 0;
  for (size_t i = 0; i < n; ++i) {
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
      T* w = staging + staged[i];
      d.w = w;
      d.out = b.out ? w : nullptr;  // divided in place in the arena, then copied to the caller's out
      d.u = w + L.size();
      d.v = d.u + L.rows;
    }
    d.u_new = elements + p.u_new_offset;
    d.v_new = elements + p.v_new_offset;
    d.x = doubles + p.x_offset;
    d.d = doubles + p.d_offset;
    d.t = doubles + p.t_offset;
    d.partial = doubles + p.partial_offset;
    d.outer = L.outer;
    d.rows = L.rows;
    d.inner = L.inner;
    d.cols = L.cols();
    d.size = L.size();
    d.sweep_items = p.sweep_items;
    d.finish_chunks = p.finish_chunks;
    d.vector_norm = b.vector_norm ? 1 : 0;
    std::memcpy(static_cast<void*>(device_layers + i), &d, sizeof d);
    states[i].active = 1;
    if (!b.vector_norm) ++matrices;
  }
  DeviceBatchFlags flags{0, static_cast<int32_t>(matrices)};
  std::memcpy(at(a.flags), &flags, sizeof flags);
  std::memcpy(at(a.sweep), plan.sweep.data(), plan.sweep.size() * sizeof(SweepItem));
  std::memcpy(at(a.finish), plan.finish.data(), plan.finish.size() * sizeof(FinishItem));
  std::memcpy(at(a.commit), plan.commit.data(), plan.commit.size() * sizeof(CommitItem));

  SN_CUDA_CHECK(cudaMemcpyAsync(base + a.meta_begin, meta.data(), meta.size(), cudaMemcpyHostToDevice, stream));
  for (size_t i = 0; i < n; ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    if (b.on_device) continue;
    const MatrixLayout& L = b.layout;
    T* w = staging + staged[i];
    SN_CUDA_CHECK(cudaMemcpyAsync(w, b.weight, L.size() * sizeof(T), cudaMemcpyHostToDevice, stream));
    if (b.vector_norm) continue;
    SN_CUDA_CHECK(cudaMemcpyAsync(w + L.size(), b.u, L.rows * sizeof(T), cudaMemcpyHostToDevice, stream));
    SN_CUDA_CHECK(cudaMemcpyAsync(w + L.size() + L.rows, b.v, L.cols() * sizeof(T), cudaMemcpyHostToDevice, stream));
  }

  const auto* dl = reinterpret_cast<const DeviceLayer<T>*>(base + a.layers);
  auto* ds = reinterpret_cast<DeviceLayerState*>(base + a.states);
  auto* counters = reinterpret_cast<uint32_t*>(base + a.counters);
  auto* df = reinterpret_cast<DeviceBatchFlags*>(base + a.flags);
  const auto* sweep = reinterpret_cast<const SweepItem*>(base + a.sweep);
  const auto* finish = reinterpret_cast<const FinishItem*>(base + a.finish);
  const auto* commit = reinterpret_cast<const CommitItem*>(base + a.commit);
  KernelParams params{options.eps, options.tolerance, options.iterations, 0, 0, 1};
  auto sweep_pass = [&](SweepMode mode) {
    launch_sweep<T>(dl, ds, df, sweep, plan.sweep.size(), mode, params, stream);
    params.first = 0;
  };
  auto finish_pass = [&](FinishMode mode) {
    launch_finish<T>(dl, ds, df, counters, finish, plan.finish.size(), mode, params, stream);
  };

  if (converge) {
    // One sweep and one finish per iteration until every layer settled; at most one extra round for the rescaled
    // retry of a first iteration. The count of active layers comes back after each round.
    for (int64_t round = 0; round <= static_cast<int64_t>(options.iterations); ++round) {
      sweep_pass(SweepMode::kSweep);
      finish_pass(FinishMode::kConverge);
      SN_CUDA_CHECK(cudaMemcpyAsync(&flags, df, sizeof flags, cudaMemcpyDeviceToHost, stream));
      SN_CUDA_CHECK(cudaStreamSynchronize(stream));
      if (flags.active <= 0) break;
    }
  } else if (options.iterations == 0) {
    params.last = 1;
    sweep_pass(SweepMode::kMatvec);
    finish_pass(FinishMode::kEval);
  } else if (options.legacy) {
    sweep_pass(SweepMode::kAccumulate);
    finish_pass(FinishMode::kLegacyFirstV);
    for (int32_t j = 0; j < options.iterations; ++j) {
      params.iteration = j;
      params.last = j + 1 == options.iterations;
      sweep_pass(params.last ? SweepMode::kMatvec : SweepMode::kSweep);
      finish_pass(FinishMode::kLegacy);
    }
  } else {
    for (int32_t j = 0; j < options.iterations; ++j) {
      params.iteration = j;
      params.last = j + 1 == options.iterations;
      sweep_pass(SweepMode::kSweep);
      finish_pass(FinishMode::kDefault);
    }
  }
  launch_commit<T>(dl, ds, df, commit, plan.commit.size(), iterated ? 1 : 0, stream);

  std::vector<DeviceLayerState> final_states(n);
  SN_CUDA_CHECK(cudaMemcpyAsync(final_states.data(), ds, n * sizeof(DeviceLayerState), cudaMemcpyDeviceToHost, stream));
  SN_CUDA_CHECK(cudaStreamSynchronize(stream));

  results.assign(n, LayerResult{});
  bool all_finite = true;
  for (size_t i = 0; i < n; ++i) {
    const DeviceLayerState& s = final_states[i];
    LayerResult& r = results[i];
    r.sigma = s.sigma;
    r.status = s.status;
    r.converged = s.converged != 0;
    r.iterations_run = layers[i].vector_norm ? 0 : converge ? s.iterations_run : options.iterations;
    if (r.status == LayerStatus::kNonFinite) all_finite = false;
  }
  if (!all_finite) return false;  // the commit kernel wrote nothing; the host arrays are untouched

  // Host layers: copy the results back only now, so a failure above leaves the caller's arrays as they were.
  for (size_t i = 0; i < n; ++i) {
    const CudaLayerBuffers<T>& b = layers[i];
    if (b.on_device) continue;
    const MatrixLayout& L = b.layout;
    const T* w = staging + staged[i];
    if (b.out) SN_CUDA_CHECK(cudaMemcpyAsync(b.out, w, L.size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
    if (!b.vector_norm && iterated && results[i].status == LayerStatus::kNormalized) {
      SN_CUDA_CHECK(cudaMemcpyAsync(b.u, w + L.size(), L.rows * sizeof(T), cudaMemcpyDeviceToHost, stream));
      SN_CUDA_CHECK(cudaMemcpyAsync(b.v, w + L.size() + L.rows, L.cols() * sizeof(T), cudaMemcpyDeviceToHost, stream));
    }
  }
  SN_CUDA_CHECK(cudaStreamSynchronize(stream));
  return true;
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

std::string device_unusable_reason(int device) {
  std::string reason;
  const int count = device_count(&reason);
  if (count == 0) return reason;
  if (device < 0 || device >= count) return "CUDA device " + std::to_string(device) + " does not exist";
  DeviceContext& context = context_for(device);
  std::lock_guard<std::mutex> lock(context.mutex);
  return context.sticky;
}

void* device_allocate(int device, size_t bytes) {
  Session session(device);
  return session.run([&] {
    void* pointer = nullptr;
    SN_CUDA_CHECK(cudaMalloc(&pointer, std::max<size_t>(bytes, 1)));
    return pointer;
  });
}

void device_free(int device, void* pointer) noexcept {
  try {
    Session session(device);
    session.run([&] {
      SN_CUDA_CHECK(cudaStreamSynchronize(session.stream()));
      SN_CUDA_CHECK(cudaFree(pointer));
    });
  } catch (...) {
    // Freeing after a sticky error cannot succeed and must not throw from a finalizer; the context is lost anyway.
  }
}

void copy_to_device(int device, void* destination, const void* source, size_t bytes) {
  Session session(device);
  session.run([&] {
    SN_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyHostToDevice, session.stream()));
    SN_CUDA_CHECK(cudaStreamSynchronize(session.stream()));
  });
}

void copy_from_device(int device, void* destination, const void* source, size_t bytes) {
  Session session(device);
  session.run([&] {
    SN_CUDA_CHECK(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost, session.stream()));
    SN_CUDA_CHECK(cudaStreamSynchronize(session.stream()));
  });
}

double copy_bandwidth(int device, size_t bytes, int repeats) {
  Session session(device);
  return session.run([&] {
    void* a = nullptr;
    void* b = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    std::vector<float> ms;
    auto release = [&] {
      if (a) cudaFree(a);
      if (b) cudaFree(b);
      if (start) cudaEventDestroy(start);
      if (stop) cudaEventDestroy(stop);
    };
    try {
      SN_CUDA_CHECK(cudaMalloc(&a, bytes));
      SN_CUDA_CHECK(cudaMalloc(&b, bytes));
      SN_CUDA_CHECK(cudaMemsetAsync(a, 0, bytes, session.stream()));
      SN_CUDA_CHECK(cudaEventCreate(&start));
      SN_CUDA_CHECK(cudaEventCreate(&stop));
      SN_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, session.stream()));  // warm-up
      for (int r = 0; r < std::max(1, repeats); ++r) {
        SN_CUDA_CHECK(cudaEventRecord(start, session.stream()));
        SN_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, session.stream()));
        SN_CUDA_CHECK(cudaEventRecord(stop, session.stream()));
        SN_CUDA_CHECK(cudaEventSynchronize(stop));
        float t = 0;
        SN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
        ms.push_back(t);
      }
    } catch (...) {
      release();
      throw;
    }
    release();
    std::sort(ms.begin(), ms.end());
    return 2.0 * static_cast<double>(bytes) / (ms[ms.size() / 2] * 1e-3);
  });
}

StreamTimer::StreamTimer(int device) : device_(device) {
  Session session(device);
  session.run([&] {
    cudaEvent_t start, stop;
    SN_CUDA_CHECK(cudaEventCreate(&start));
    SN_CUDA_CHECK(cudaEventCreate(&stop));
    start_ = start;
    stop_ = stop;
    SN_CUDA_CHECK(cudaEventRecord(start, session.stream()));
  });
}

StreamTimer::~StreamTimer() {
  if (start_) cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  if (stop_) cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

double StreamTimer::stop_ms() {
  Session session(device_);
  return session.run([&] {
    SN_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(stop_), session.stream()));
    SN_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)));
    float ms = 0;
    SN_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_)));
    return static_cast<double>(ms);
  });
}

}  // namespace sn::cuda
