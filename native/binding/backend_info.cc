#include "backend_info.h"

#include <string>

#include "../cpu/kernels.h"
#include "../cpu/thread_pool.h"
#include "../cuda/device_query.h"

namespace sn::binding {

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

}  // namespace sn::binding
