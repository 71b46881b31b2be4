// The Node-API entry point: the production calls (backendInfo, run, runAsync, convApply, convSpectrum, DeviceArray)
// and the `internal`
// object of test hooks and benchmark probes (internal.h). Unmarshal, schedule, map errors; no math here.
#include <napi.h>

#include <exception>
#include <vector>

#include "backend_info.h"
#include "conv_job.h"
#include "device_array.h"
#include "errors.h"
#include "internal.h"
#include "power_job.h"
#include "power_worker.h"

namespace sn::binding {
namespace {

Napi::Object JobArgument(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(info.Env(), "job must be an object");
  return info[0].As<Napi::Object>();
}

// Sync: returns true when every layer was finite (and committed), false when nothing was modified.
Napi::Value Run(const Napi::CallbackInfo& info) {
  std::vector<Napi::Object> arrays;
  try {
    PowerJob job = PowerJob::FromJs(JobArgument(info), &arrays);
    job.Execute();
    return Napi::Boolean::New(info.Env(), job.all_finite());
  } catch (const Napi::Error&) {
    throw;  // an argument error, as it is
  } catch (const std::exception&) {
    throw js_error(info.Env(), job_failure());
  }
}

// Async: the same, off the event loop; a promise of the same boolean.
Napi::Value RunAsync(const Napi::CallbackInfo& info) {
  std::vector<Napi::Object> arrays;
  try {
    PowerJob job = PowerJob::FromJs(JobArgument(info), &arrays);
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

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  export_function<BackendInfo>(env, exports, "backendInfo");
  export_function<Run>(env, exports, "run");
  export_function<RunAsync>(env, exports, "runAsync");
  export_function<ConvApply>(env, exports, "convApply");
  export_function<ConvSpectrum>(env, exports, "convSpectrum");
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
