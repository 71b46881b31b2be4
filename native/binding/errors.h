#pragma once
// How failures reach JS. An argument error is a TypeError or RangeError whose message starts with the argument's
// name: TypeScript validates every argument first, and these throws are the safety net for a call from elsewhere.
// Any other failure is an Error with a `code` from native/common/codes.h, and errors.cc alone builds those.
#include <napi.h>

#include <optional>
#include <string>

#include "../common/codes.h"
#include "../cuda/cuda_backend.h"

namespace sn::binding {

[[noreturn]] inline void throw_type_error(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

[[noreturn]] inline void throw_range_error(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

// A failure that is not the caller's argument, as plain data: it can be made on any thread (a worker's Execute) and
// turned into a JS Error later, on the JS thread.
struct Failure {
  std::optional<ErrorCode> code;  // none: a plain Error
  std::string message;
};

// Host memory for `what` could not be had: code OutOfMemory.
Failure out_of_memory(const std::string& what);

// A CUDA failure: code OutOfMemory for out of device memory (nothing modified), else Cuda; the message names the
// CUDA call, file, line and error.
Failure cuda_failure(const cuda::BackendError& e);

// Inside a catch block: the std::exception a job's math threw (std::bad_alloc for its scratch space, a
// cuda::BackendError, or anything else, which becomes a plain Error). Never call it for a Napi::Error.
Failure job_failure();

Napi::Error js_error(Napi::Env env, const Failure& failure);

// Throws a callback's JS exception with the C API rather than leaving it to node-addon-api, which ends the process
// when that throw fails, as it does in a worker thread being terminated (no JS can run there any more; the thread is
// going away, so the exception has no one to reach and is dropped). Every exported function is wrapped in it.
template <Napi::Value (*Callback)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return Callback(info);
  } catch (const Napi::Error& error) {
    napi_throw(info.Env(), error.Value());
    return Napi::Value();
  }
}

// A function for an exports object, guarded.
template <Napi::Value (*Callback)(const Napi::CallbackInfo&)>
void export_function(Napi::Env env, Napi::Object target, const char* name) {
  target.Set(name, Napi::Function::New(env, Guarded<Callback>, name));
}

}  // namespace sn::binding
