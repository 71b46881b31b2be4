// The Node-API entry point: unmarshal, schedule, map errors. No math here.
#include <napi.h>

#include <algorithm>
#include <new>
#include <vector>

#include "../cpu/bandwidth_probe.h"
#include "../cpu/kernels.h"
#include "../cpu/scratch_allocator.h"
#include "../cpu/thread_pool.h"
#include "../cuda/device_query.h"
#include "../cuda/batch_plan.h"
#include "device_array.h"
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
  } catch (const cuda::BackendError& e) {
    throw backend_error(info.Env(), e);
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

// Tests only: the CUDA backend's work lists for a batch, planned as a run would plan them (see batch_plan.h).
// planCudaBatch(layers: {outer, rows, inner, vectorNorm, hasOut}[], elementBytes, iterated).
Napi::Value PlanCudaBatch(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber()) {
    throw_type_error(env, "planCudaBatch(layers, elementBytes, iterated)");
  }
  const Napi::Array list = info[0].As<Napi::Array>();
  std::vector<cuda::PlanInput> inputs;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Object l = list.Get(i).As<Napi::Object>();
    cuda::PlanInput p;
    p.layout.outer = l.Get("outer").As<Napi::Number>().Int64Value();
    p.layout.rows = l.Get("rows").As<Napi::Number>().Int64Value();
    p.layout.inner = l.Get("inner").As<Napi::Number>().Int64Value();
    p.vector_norm = l.Get("vectorNorm").ToBoolean();
    p.has_out = l.Get("hasOut").ToBoolean();
    inputs.push_back(p);
  }
  const cuda::BatchPlan plan = cuda::plan_batch(inputs, info[1].As<Napi::Number>().Uint32Value(), info[2].ToBoolean());
  auto number = [&](double x) { return Napi::Number::New(env, x); };
  Napi::Array layers = Napi::Array::New(env, plan.layers.size());
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const cuda::LayerPlan& p = plan.layers[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("sweepItems", number(p.sweep_items));
    o.Set("finishChunks", number(p.finish_chunks));
    o.Set("xOffset", number(p.x_offset));
    o.Set("dOffset", number(p.d_offset));
    o.Set("tOffset", number(p.t_offset));
    o.Set("partialOffset", number(p.partial_offset));
    o.Set("uNewOffset", number(p.u_new_offset));
    o.Set("vNewOffset", number(p.v_new_offset));
    layers.Set(static_cast<uint32_t>(i), o);
  }
  auto items = [&](auto const& list, auto fill) {
    Napi::Array a = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      fill(o, list[i]);
      a.Set(static_cast<uint32_t>(i), o);
    }
    return a;
  };
  Napi::Object result = Napi::Object::New(env);
  result.Set("layers", layers);
  result.Set("sweep", items(plan.sweep, [&](Napi::Object& o, const cuda::SweepItem& s) {
    o.Set("layer", number(s.layer));
    o.Set("slot", number(s.slot));
    o.Set("begin", number(static_cast<double>(s.row_begin)));
    o.Set("end", number(static_cast<double>(s.row_end)));
  }));
  result.Set("finish", items(plan.finish, [&](Napi::Object& o, const cuda::FinishItem& f) {
    o.Set("layer", number(f.layer));
    o.Set("chunk", number(f.chunk));
    o.Set("begin", number(static_cast<double>(f.col_begin)));
    o.Set("end", number(static_cast<double>(f.col_end)));
  }));
  result.Set("commit", items(plan.commit, [&](Napi::Object& o, const cuda::CommitItem& c) {
    o.Set("layer", number(c.layer));
    o.Set("kind", number(static_cast<double>(c.kind)));
    o.Set("begin", number(static_cast<double>(c.begin)));
    o.Set("end", number(static_cast<double>(c.end)));
  }));
  result.Set("doubles", number(static_cast<double>(plan.doubles)));
  result.Set("elements", number(static_cast<double>(plan.elements)));
  return result;
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

// Benchmarks only: cudaCopyBandwidth(device, bytes, repeats) → device-to-device bytes/s (read + write), median.
Napi::Value CudaCopyBandwidth(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i) {
    if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < (i == 0 ? 0 : 1)) {
      throw_range_error(env, "cudaCopyBandwidth(device, bytes, repeats) takes three non-negative numbers");
    }
  }
  try {
    return Napi::Number::New(env, cuda::copy_bandwidth(info[0].As<Napi::Number>().Int32Value(),
                                                       static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue()),
                                                       info[2].As<Napi::Number>().Int32Value()));
  } catch (const cuda::BackendError& e) {
    throw backend_error(env, e);
  }
}

// Benchmarks only: cudaTime(device, fn) → milliseconds between CUDA events recorded on the device's stream before
// and after fn() (which runs synchronous steps), so the time is what the GPU saw.
Napi::Value CudaTime(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsFunction()) throw_type_error(env, "cudaTime(device, fn)");
  try {
    cuda::StreamTimer timer(info[0].As<Napi::Number>().Int32Value());
    info[1].As<Napi::Function>().Call({});
    return Napi::Number::New(env, timer.stop_ms());
  } catch (const cuda::BackendError& e) {
    throw backend_error(env, e);
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
  exports.Set("planCudaBatch", Napi::Function::New(env, Guarded<PlanCudaBatch>, "planCudaBatch"));
  exports.Set("DeviceArray", DeviceArray::Define(env));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, Guarded<CudaCopyBandwidth>, "cudaCopyBandwidth"));
  exports.Set("cudaTime", Napi::Function::New(env, Guarded<CudaTime>, "cudaTime"));
  return exports;
}

}  // namespace sn::binding

// Context-aware (Node-API modules always are): loads in the main thread and in any number of worker threads.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return sn::binding::Init(env, exports); }
NODE_API_MODULE(spectral_norm, InitAddon)
