#include "errors.h"

#include <exception>
#include <new>
#include <stdexcept>

namespace sn::binding {

Failure out_of_memory(const std::string& what) {
  return {ErrorCode::kOutOfMemory, "spectral-norm: out of memory for " + what};
}

Failure cuda_failure(const cuda::BackendError& e) {
  if (e.out_of_memory())
    return {ErrorCode::kOutOfMemory, std::string(e.what()) + "; out of device memory, nothing was modified"};
  return {ErrorCode::kCuda, e.what()};
}

Failure job_failure() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return out_of_memory("the job's scratch space; nothing was modified");
  } catch (const cuda::BackendError& e) {
    return cuda_failure(e);
  } catch (const std::exception& e) {
    return {std::nullopt, std::string("spectral-norm: ") + e.what()};
  }
}

Napi::Error js_error(Napi::Env env, const Failure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.message);
  if (failure.code) error.Set("code", Napi::String::New(env, error_code_string(*failure.code)));
  return error;
}

}  // namespace sn::binding
