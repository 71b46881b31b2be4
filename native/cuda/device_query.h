#pragma once
// What the CUDA runtime reports about this machine. Implemented by device_query.cu when the CUDA toolkit is built
// in, and by device_query_unavailable.cpp when it is not, so the binding needs no #ifdef.
#include <cstddef>
#include <string>
#include <vector>

namespace sn::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int major = 0;  // compute capability
  int minor = 0;
  size_t total_memory = 0;  // bytes
};

struct CudaInfo {
  bool compiled = false;    // the CUDA toolkit was found at build time
  int runtime_version = 0;  // e.g. 13000
  int driver_version = 0;   // 0 when no driver is installed
  std::vector<DeviceInfo> devices;
  std::string reason;  // why no device is usable, when none is
};

// Never throws for a missing driver or device: those are reported in `reason`.
CudaInfo query_devices();

}  // namespace sn::cuda
