// The build without the CUDA toolkit (SN_CUDA=OFF, or AUTO with no nvcc found).
#include "device_query.h"

namespace sn::cuda {

CudaInfo query_devices() {
  CudaInfo info;
  info.reason = "this build has no CUDA support: the CUDA toolkit was not found at build time, or SN_CUDA=OFF";
  return info;
}

}  // namespace sn::cuda
