// query_devices() on the CUDA runtime (device_query.h): versions and devices, and why none is usable when so.
#include <cuda_runtime.h>

#include <string>

#include "device_query.h"

namespace sn::cuda {
namespace {

std::string describe(const char* call, cudaError_t status) {
  return std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
}

}  // namespace

CudaInfo query_devices() {
  CudaInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  if (cudaDriverGetVersion(&info.driver_version) != cudaSuccess) info.driver_version = 0;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    info.reason = describe("cudaGetDeviceCount", status);
    cudaGetLastError();  // clear it: a missing driver is not a sticky error
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    const cudaError_t s = cudaGetDeviceProperties(&prop, i);
    if (s != cudaSuccess) {
      info.reason = describe("cudaGetDeviceProperties", s);
      continue;
    }
    info.devices.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
  }
  if (count == 0) info.reason = "the CUDA runtime found no device";
  return info;
}

}  // namespace sn::cuda
