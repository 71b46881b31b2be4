#pragma once
// CUDA errors as C++ exceptions carrying the call, file, line and the error's name. Kernels know nothing of Node:
// the binding turns a CudaError into a JS Error.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace sn::cuda {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, cudaError_t code) : std::runtime_error(message), code_(code) {}
  cudaError_t code() const { return code_; }
  bool out_of_memory() const { return code_ == cudaErrorMemoryAllocation; }

 private:
  cudaError_t code_;
};

// Errors after which the context is unusable until the process exits: every later call fails fast.
inline bool is_sticky(cudaError_t code) {
  switch (code) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorECCUncorrectable:
    case cudaErrorUnknown: return true;
    default: return false;
  }
}

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line);

}  // namespace sn::cuda

#define SN_CUDA_CHECK(call)                                                                                       \
  do {                                                                                                            \
    const cudaError_t sn_cuda_status_ = (call);                                                                   \
    if (sn_cuda_status_ != cudaSuccess) ::sn::cuda::throw_cuda_error(sn_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch; `name`, a string literal, names the kernel in the error. A bad configuration shows up here,
// a fault in the kernel at the next synchronisation.
#define SN_CUDA_CHECK_LAUNCH(name)                                                         \
  do {                                                                                     \
    const cudaError_t sn_cuda_status_ = cudaGetLastError();                                \
    if (sn_cuda_status_ != cudaSuccess) {                                                  \
      ::sn::cuda::throw_cuda_error(sn_cuda_status_, name "<<<...>>>", __FILE__, __LINE__); \
    }                                                                                      \
  } while (0)
