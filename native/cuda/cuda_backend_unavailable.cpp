// The build without the CUDA toolkit: every entry point of the CUDA backend says why it cannot run.
#include "cuda_backend.h"

namespace sn::cuda {
namespace {

const char* const kNoCuda = "spectral-norm: this build has no CUDA support (SN_CUDA=OFF, or no nvcc at build time)";

}  // namespace

template <typename T>
bool run_power_batch_cuda(int, const std::vector<CudaLayerBuffers<T>>&, const PowerOptions&,
                          std::vector<LayerResult>&) {
  throw BackendError(kNoCuda, false);
}
template bool run_power_batch_cuda<float>(int, const std::vector<CudaLayerBuffers<float>>&, const PowerOptions&,
                                          std::vector<LayerResult>&);
template bool run_power_batch_cuda<double>(int, const std::vector<CudaLayerBuffers<double>>&, const PowerOptions&,
                                           std::vector<LayerResult>&);

std::string device_unusable_reason(int) { return kNoCuda; }
void* device_allocate(int, size_t) { throw BackendError(kNoCuda, false); }
void device_free(int, void*, size_t) noexcept {}
void copy_to_device(int, void*, const void*, size_t) { throw BackendError(kNoCuda, false); }
void copy_from_device(int, void*, const void*, size_t) { throw BackendError(kNoCuda, false); }
ProbeResult probe_device(int) { throw BackendError(kNoCuda, false); }
void acquire_user() {}
void release_user() {}
ResourceCounts resource_counts() { return {}; }
void set_staging_chunk_bytes(size_t) {}

double copy_bandwidth(int, size_t, int) { throw BackendError(kNoCuda, false); }
double read_bandwidth_device(int, size_t, int) { throw BackendError(kNoCuda, false); }
StreamTimer::StreamTimer(int device) : device_(device) { throw BackendError(kNoCuda, false); }
StreamTimer::~StreamTimer() = default;
double StreamTimer::stop_ms() { throw BackendError(kNoCuda, false); }

}  // namespace sn::cuda
