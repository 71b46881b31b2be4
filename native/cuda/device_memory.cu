// Device memory for weights kept on the GPU, and the measurements (cuda_backend.h): device_allocate and its copies,
// the probe of the 'auto' cost model, and the benchmarks' bandwidths and stream timer.
#include <algorithm>
#include <chrono>
#include <vector>

#include "device_context.h"
#include "host_transfer.h"
#include "power_kernels.cuh"

namespace sn::cuda {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// CUDA events that are destroyed on every path out.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    SN_CUDA_CHECK(cudaEventCreate(&start));
    SN_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
  // Milliseconds of `body`, enqueued on `stream` between the two events.
  template <typename F>
  double time(cudaStream_t stream, F&& body) {
    SN_CUDA_CHECK(cudaEventRecord(start, stream));
    body();
    SN_CUDA_CHECK(cudaEventRecord(stop, stream));
    SN_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    SN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  }
};

// Device memory for a benchmark, freed on every path out.
struct Scratch {
  void* p = nullptr;
  explicit Scratch(size_t bytes) { SN_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 1))); }
  ~Scratch() {
    if (p) cudaFree(p);
  }
};

}  // namespace

void* device_allocate(int device, size_t bytes) {
  Session session(device);
  return session.run([&] {
    void* pointer = nullptr;
    SN_CUDA_CHECK(cudaMalloc(&pointer, std::max<size_t>(bytes, 1)));
    count_device_array_bytes(static_cast<std::ptrdiff_t>(bytes));
    return pointer;
  });
}

void device_free(int device, void* pointer, size_t bytes) noexcept {
  // No Session: this may run from a finalizer after release_user freed the contexts. cudaFree waits for the device.
  if (cudaSetDevice(device) == cudaSuccess && cudaFree(pointer) == cudaSuccess) {
    count_device_array_bytes(-static_cast<std::ptrdiff_t>(bytes));
  }
  cudaGetLastError();  // after a sticky error the free fails; the memory is lost with the context anyway
}

void copy_to_device(int device, void* destination, const void* source, size_t bytes) {
  Session session(device);
  session.run([&] {
    upload_image(session, static_cast<char*>(destination), bytes, {{0, const_cast<void*>(source), bytes}});
    SN_CUDA_CHECK(cudaStreamSynchronize(session.stream()));
  });
}

void copy_from_device(int device, void* destination, const void* source, size_t bytes) {
  Session session(device);
  session.run([&] { download_image(session, static_cast<const char*>(source), bytes, {{0, destination, bytes}}); });
}

ProbeResult probe_device(int device) {
  Session session(device);
  return session.run([&] {
    ProbeResult r;
    DeviceContext& c = session.context();
    session.ensure_ring();
    const size_t chunk = c.chunk_bytes;
    // Two halves of the arena for the device copy; the pinned ring's first slot for the host side.
    const size_t copy_bytes = std::max<size_t>(chunk, size_t(16) << 20);
    char* arena = session.arena(2 * copy_bytes);
    void* pinned = c.ring.data;
    EventPair events;
    std::vector<double> ms;
    auto bandwidth = [&](cudaStream_t stream, auto&& body, size_t bytes, int repeats) {
      body();  // warm-up
      ms.clear();
      for (int k = 0; k < repeats; ++k) ms.push_back(events.time(stream, body));
      return static_cast<double>(bytes) / (median(ms) * 1e-3);
    };
    r.host_to_device_bytes_per_second = bandwidth(
        c.copy_stream,
        [&] { SN_CUDA_CHECK(cudaMemcpyAsync(arena, pinned, chunk, cudaMemcpyHostToDevice, c.copy_stream)); }, chunk, 3);
    r.device_to_host_bytes_per_second = bandwidth(
        c.copy_stream,
        [&] { SN_CUDA_CHECK(cudaMemcpyAsync(pinned, arena, chunk, cudaMemcpyDeviceToHost, c.copy_stream)); }, chunk, 3);
    r.device_copy_bytes_per_second = bandwidth(
        c.stream,
        [&] {
          SN_CUDA_CHECK(cudaMemcpyAsync(arena + copy_bytes, arena, copy_bytes, cudaMemcpyDeviceToDevice, c.stream));
        },
        2 * copy_bytes, 5);
    // The fixed cost of a GPU call as a caller sees it: one launch and the wait for it, host clock.
    std::vector<double> seconds;
    for (int k = 0; k < 12; ++k) {
      const auto start = std::chrono::steady_clock::now();
      launch_empty(c.stream);
      SN_CUDA_CHECK(cudaStreamSynchronize(c.stream));
      if (k >= 2) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    r.launch_seconds = median(seconds);
    return r;
  });
}

double copy_bandwidth(int device, size_t bytes, int repeats) {
  Session session(device);
  return session.run([&] {
    Scratch a(bytes), b(bytes);
    EventPair events;
    SN_CUDA_CHECK(cudaMemsetAsync(a.p, 0, bytes, session.stream()));
    auto copy = [&] { SN_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, session.stream())); };
    copy();  // warm-up
    std::vector<double> ms;
    for (int r = 0; r < std::max(1, repeats); ++r) ms.push_back(events.time(session.stream(), copy));
    return 2.0 * static_cast<double>(bytes) / (median(ms) * 1e-3);
  });
}

double read_bandwidth_device(int device, size_t bytes, int repeats) {
  Session session(device);
  return session.run([&] {
    bytes = bytes / 16 * 16;
    const uint32_t blocks = session.context().caps.multiprocessors * 8;
    Scratch data(bytes), sink(blocks * sizeof(double));
    EventPair events;
    SN_CUDA_CHECK(cudaMemsetAsync(data.p, 0, bytes, session.stream()));
    auto read = [&] { launch_read(data.p, bytes, static_cast<double*>(sink.p), blocks, session.stream()); };
    read();  // warm-up
    std::vector<double> ms;
    for (int r = 0; r < std::max(1, repeats); ++r) ms.push_back(events.time(session.stream(), read));
    return static_cast<double>(bytes) / (median(ms) * 1e-3);
  });
}

StreamTimer::StreamTimer(int device) : device_(device) {
  Session session(device);
  session.run([&] {
    cudaEvent_t start, stop;
    SN_CUDA_CHECK(cudaEventCreate(&start));
    start_ = start;
    SN_CUDA_CHECK(cudaEventCreate(&stop));
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
