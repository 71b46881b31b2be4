// Benchmark probes, on the addon's `internal` object (internal.h): the machine's own bandwidths and the GPU's clock,
// which the benchmarks in bench/ compare the library against in the same run.
#include <napi.h>

#include <new>

#include "../cpu/bandwidth_probe.h"
#include "../cuda/cuda_backend.h"
#include "cuda_users.h"
#include "errors.h"
#include "internal.h"

namespace sn::binding {
namespace {

// readBandwidth(bytes, threads, repeats) → bytes per second (median). Blocks the event loop while it runs.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < 1) {
      throw_range_error(env, "readBandwidth(bytes, threads, repeats) takes three positive numbers");
    }
  }
  try {
    return Napi::Number::New(
        env, read_bandwidth(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()),
                            info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value()));
  } catch (const std::bad_alloc&) {
    throw js_error(env, out_of_memory("the probe's buffer"));
  }
}

// cudaCopyBandwidth(device, bytes, repeats) → device-to-device bytes/s (read + write), median.
Napi::Value CudaCopyBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < (i == 0 ? 0 : 1)) {
      throw_range_error(env, "cudaCopyBandwidth(device, bytes, repeats) takes three non-negative numbers");
    }
  }
  ensure_cuda_user(env);
  try {
    return Napi::Number::New(env, cuda::copy_bandwidth(info[0].As<Napi::Number>().Int32Value(),
                                                       static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()),
                                                       info[2].As<Napi::Number>().Int32Value()));
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
}

// cudaTime(device, fn) → milliseconds between CUDA events recorded on the device's stream before and after fn()
// (which runs synchronous steps), so the time is what the GPU saw.
Napi::Value CudaTime(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) throw_type_error(env, "cudaTime(device, fn)");
  ensure_cuda_user(env);
  try {
    cuda::StreamTimer timer(info[0].As<Napi::Number>().Int32Value());
    info[1].As<Napi::Function>().Call({});
    return Napi::Number::New(env, timer.stop_ms());
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
}

// cudaReadBandwidth(device, bytes, repeats) → the device's streaming read bandwidth in bytes/s, median.
Napi::Value CudaReadBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < (i == 0 ? 0 : 1)) {
      throw_range_error(env, "cudaReadBandwidth(device, bytes, repeats) takes three non-negative numbers");
    }
  }
  ensure_cuda_user(env);
  try {
    return Napi::Number::New(env,
                             cuda::read_bandwidth_device(info[0].As<Napi::Number>().Int32Value(),
                                                         static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()),
                                                         info[2].As<Napi::Number>().Int32Value()));
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
}

}  // namespace

void add_bench_probes(Napi::Env env, Napi::Object internal) {
  export_function<ReadBandwidth>(env, internal, "readBandwidth");
  export_function<CudaCopyBandwidth>(env, internal, "cudaCopyBandwidth");
  export_function<CudaTime>(env, internal, "cudaTime");
  export_function<CudaReadBandwidth>(env, internal, "cudaReadBandwidth");
}

}  // namespace sn::binding
