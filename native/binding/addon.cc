// The Node-API entry point: unmarshal, schedule, map errors. No math here.
#include <napi.h>

#include <new>
#include <vector>

#include "../cpu/bandwidth_probe.h"
#include "../cpu/kernels.h"
#include "../cpu/scratch_allocator.h"
#include "../cpu/thread_pool.h"
#include "../cuda/device_query.h"
#include "errors.h"
#include "power_job.h"
#include "power_worker.h"

namespace sn::binding {
namespace {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("compiled", true);
  cpu.Set("simd", kernels::simd_level());
  cpu.Set("hardwareThreads", available_threads());

  const cuda::CudaInfo c = cuda::query_devices();
  Napi::Object gpu = Napi::Object::New(env);
  gpu.Set("compiled", c.compiled);
  gpu.Set("runtimeVersion", c.runtime_version);
  gpu.Set("driverVersion", c.driver_version);
  Napi::Array devices = Napi::Array::New(env, c.devices.size());
  for (size_t i = 0; i < c.devices.size(); ++i) {
    const cuda::DeviceInfo& d = c.devices[i];
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", d.index);
    device.Set("name", d.name);
    device.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    device.Set("totalMemory", static_cast<double>(d.total_memory));
    devices.Set(static_cast<uint32_t>(i), device);
  }
  gpu.Set("devices", devices);
  gpu.Set("reason", c.reason);

  Napi::Object result = Napi::Object::New(env);
  result.Set("cpu", cpu);
  result.Set("cuda", gpu);
  return result;
}

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
  } catch (const std::bad_alloc&) {
    throw coded_error(info.Env(), "ERR_SPECTRAL_NORM_OUT_OF_MEMORY",
                      "spectral-norm: out of memory for the job's scratch space; nothing was modified");
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
  } catch (const std::bad_alloc&) {
    throw coded_error(info.Env(), "ERR_SPECTRAL_NORM_OUT_OF_MEMORY",
                      "spectral-norm: out of memory for the job; nothing was modified");
  }
}

// Test-only (see native/cpu/scratch_allocator.h): makes the nth scratch allocation from now fail; 0 disarms.
Napi::Value TestFailScratchAllocation(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 0) {
    throw_range_error(info.Env(), "testFailScratchAllocation(n) takes a number >= 0");
  }
  fail_scratch_allocation(static_cast<uint64_t>(info[0].As<Napi::Number>().DoubleValue()));
  return info.Env().Undefined();
}

// Test-only: scratch allocations made so far, to size a sweep over each allocation of a call.
Napi::Value TestScratchAllocationCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(scratch_allocation_count()));
}

}  // namespace

// Benchmarks only: readBandwidth(bytes, threads, repeats) → bytes per second (median), off no event loop.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < 1) {
      throw_range_error(env, "readBandwidth(bytes, threads, repeats) takes three positive numbers");
    }
  }
  try {
    return Napi::Number::New(env, read_bandwidth(static_cast<size_t>(info[0].As<Napi::Number>().DoubleValue()),
                                                 info[1].As<Napi::Number>().Uint32Value(),
                                                 info[2].As<Napi::Number>().Uint32Value()));
  } catch (const std::bad_alloc&) {
    throw coded_error(env, "ERR_SPECTRAL_NORM_OUT_OF_MEMORY", "spectral-norm: out of memory for the probe's buffer");
  }
}

// Throws a callback's JS exception with the C API rather than leaving it to node-addon-api, which ends the process
// when that throw fails, as it does in a worker thread being terminated (no JS can run there any more; the thread is
// going away, so the exception has no one to reach and is dropped).
template <Napi::Value (*Callback)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return Callback(info);
  } catch (const Napi::Error& error) {
    napi_throw(info.Env(), error.Value());
    return Napi::Value();
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("readBandwidth", Napi::Function::New(env, Guarded<ReadBandwidth>, "readBandwidth"));
  exports.Set("backendInfo", Napi::Function::New(env, Guarded<BackendInfo>, "backendInfo"));
  exports.Set("run", Napi::Function::New(env, Guarded<Run>, "run"));
  exports.Set("runAsync", Napi::Function::New(env, Guarded<RunAsync>, "runAsync"));
  exports.Set("testFailScratchAllocation", Napi::Function::New(env, Guarded<TestFailScratchAllocation>, "testFailScratchAllocation"));
  exports.Set("testScratchAllocationCount", Napi::Function::New(env, Guarded<TestScratchAllocationCount>, "testScratchAllocationCount"));
  return exports;
}

}  // namespace sn::binding

// Context-aware (Node-API modules always are): loads in the main thread and in any number of worker threads.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sn::binding::Init(env, exports); }
NODE_API_MODULE(spectral_norm, InitAddon)
