#pragma once
// DeviceArray: float32 or float64 memory on a CUDA device, wrapped for JS. dispose() and the finalizer share one
// idempotent release; every other method throws once it ran. The size is reported to V8 as external memory.
#include <napi.h>

#include <cstddef>
#include <string>

namespace sn::binding {

class DeviceArray : public Napi::ObjectWrap<DeviceArray> {
 public:
  // new DeviceArray(dtype: 'float32' | 'float64', length: number, device: number)
  static Napi::Function Define(Napi::Env env);
  explicit DeviceArray(const Napi::CallbackInfo& info);
  ~DeviceArray() override;
  void Finalize(Napi::Env env) override;

  // The wrapped DeviceArray behind a JS value, or nullptr when it is not one.
  static DeviceArray* From(Napi::Env env, const Napi::Value& value);

  bool f64() const { return f64_; }
  int device() const { return device_; }
  size_t length() const { return length_; }
  // Throws a JS Error when disposed.
  void* data(Napi::Env env, const std::string& name) const;

 private:
  Napi::Value Upload(const Napi::CallbackInfo& info);
  Napi::Value Download(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  // The host range of a typed-array argument and the device range it maps to, checked.
  void Transfer(const Napi::CallbackInfo& info, bool upload);
  void Release(Napi::Env env);

  bool f64_ = false;
  int device_ = 0;
  size_t length_ = 0;
  void* data_ = nullptr;
};

}  // namespace sn::binding
