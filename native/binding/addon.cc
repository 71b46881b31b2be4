// The Node-API entry point: the production calls (backendInfo, run, runAsync, runPacked, runPackedAsync, cudaProbe,
// convApply, convSpectrum, decodeHalf, DeviceArray) and the `internal` object of test hooks and benchmark probes
// (internal.h). Unmarshal, schedule, map errors; no math here.
#include <napi.h>

#include <cmath>
#include <exception>
#include <vector>

#include "../cuda/cuda_backend.h"
#include "backend_info.h"
#include "conv_job.h"
#include "cuda_users.h"
#include "device_array.h"
#include "errors.h"
#include "half_convert.h"
#include "internal.h"
#include "power_job.h"
#include "power_worker.h"

namespace sn::binding {
namespace {

Napi::Object JobArgument(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(info.Env(), "job must be an object");
  return info[0].As<Napi::Object>();
}

using Unmarshal = PowerJob (*)(const Napi::Object&, std::vector<Napi::Object>*);

// Sync: returns true when every layer was finite (and committed), false when nothing was modified.
template <Unmarshal FromJs>
Napi::Value Run(const Napi::CallbackInfo& info) {
  std::vector<Napi::Object> arrays;
  try {
    PowerJob job = FromJs(JobArgument(info), &arrays);
    job.Execute();
    return Napi::Boolean::New(info.Env(), job.all_finite());
  } catch (const Napi::Error&) {
    throw;  // an argument error, as it is
  } catch (const std::exception&) {
    throw js_error(info.Env(), job_failure());
  }
}

// Async: the same, off the event loop; a promise of the same boolean.
template <Unmarshal FromJs>
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  std::vector<Napi::Object> arrays;
  try {
    PowerJob job = FromJs(JobArgument(info), &arrays);
    auto* worker = new PowerWorker(info.Env(), std::move(job), arrays);
    Napi::Promise promise = worker->Promise();
    worker->Queue();  // the worker deletes itself when done
    return promise;
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception&) {
    throw js_error(info.Env(), job_failure());
  }
}

// cudaProbe(device): what the 'auto' cost model needs of a GPU, measured now (binding.d.ts, CudaProbe).
Napi::Value CudaProbe(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double device = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(device >= 0 && device <= 1023) || std::floor(device) != device) {
    throw_range_error(env, "device must be an integer from 0 to 1023");
  }
  ensure_cuda_user(env);
  try {
    const cuda::ProbeResult r = cuda::probe_device(static_cast<int>(device));
    Napi::Object result = Napi::Object::New(env);
    result.Set("hostToDeviceBytesPerSecond", r.host_to_device_bytes_per_second);
    result.Set("deviceToHostBytesPerSecond", r.device_to_host_bytes_per_second);
    result.Set("launchSeconds", r.launch_seconds);
    result.Set("deviceCopyBytesPerSecond", r.device_copy_bytes_per_second);
    return result;
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  export_function<BackendInfo>(env, exports, "backendInfo");
  export_function<Run<PowerJob::FromJs>>(env, exports, "run");
  export_function<RunAsync<PowerJob::FromJs>>(env, exports, "runAsync");
  export_function<Run<PowerJob::FromPacked>>(env, exports, "runPacked");
  export_function<RunAsync<PowerJob::FromPacked>>(env, exports, "runPackedAsync");
  export_function<CudaProbe>(env, exports, "cudaProbe");
  export_function<ConvApply>(env, exports, "convApply");
  export_function<ConvSpectrum>(env, exports, "convSpectrum");
  add_half_convert(env, exports);
  exports.Set("DeviceArray", DeviceArray::Define(env));
  Napi::Object internal = Napi::Object::New(env);
  add_testing_hooks(env, internal);
  add_bench_probes(env, internal);
  exports.Set("internal", internal);
  return exports;
}

}  // namespace sn::binding

// Context-aware (Node-API modules always are): loads in the main thread and in any number of worker threads.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sn::binding::Init(env, exports); }
NODE_API_MODULE(spectral_norm, InitAddon)
