#include "device_array.h"

#include <cmath>

#include "../cuda/cuda_backend.h"
#include "cuda_users.h"
#include "errors.h"

namespace sn::binding {
namespace {

struct AddonData {
  Napi::FunctionReference device_array;
};

size_t element_bytes(bool f64) { return f64 ? sizeof(double) : sizeof(float); }

double index_argument(Napi::Env env, const Napi::Value& value, const char* name, double max) {
  const double x = value.IsNumber() ? value.As<Napi::Number>().DoubleValue() : -1;
  if (!(x >= 0 && x <= max) || std::floor(x) != x) {
    throw_range_error(env,
                      std::string(name) + " must be an integer from 0 to " + std::to_string(static_cast<size_t>(max)));
  }
  return x;
}

}  // namespace

Napi::Function DeviceArray::Define(Napi::Env env) {
  Napi::Function constructor =
      DefineClass(env, "DeviceArray",
                  {InstanceMethod<&DeviceArray::Upload>("upload"), InstanceMethod<&DeviceArray::Download>("download"),
                   InstanceMethod<&DeviceArray::Dispose>("dispose"), InstanceAccessor<&DeviceArray::Length>("length"),
                   InstanceAccessor<&DeviceArray::Dtype>("dtype"), InstanceAccessor<&DeviceArray::Device>("device"),
                   InstanceAccessor<&DeviceArray::Disposed>("disposed")});
  auto* data = new AddonData{Napi::Persistent(constructor)};
  env.SetInstanceData<AddonData>(data);
  return constructor;
}

DeviceArray* DeviceArray::From(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) return nullptr;
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr || !value.As<Napi::Object>().InstanceOf(data->device_array.Value())) return nullptr;
  return Unwrap(value.As<Napi::Object>());
}

DeviceArray::DeviceArray(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceArray>(info) {
  const Napi::Env env = info.Env();
  const std::string dtype = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (dtype != "float32" && dtype != "float64") throw_type_error(env, "dtype must be 'float32' or 'float64'");
  f64_ = dtype == "float64";
  length_ = static_cast<size_t>(index_argument(env, info[1], "length", 9007199254740991.0 / 8));
  device_ = static_cast<int>(index_argument(env, info[2], "device", 1023));
  ensure_cuda_user(env);
  try {
    data_ = cuda::device_allocate(device_, length_ * element_bytes(f64_));
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length_ * element_bytes(f64_)));
}

DeviceArray::~DeviceArray() {
  if (data_) cuda::device_free(device_, data_, length_ * element_bytes(f64_));  // only if Finalize did not run
}

void DeviceArray::Finalize(Napi::Env env) { Release(env); }

void DeviceArray::Release(Napi::Env env) {
  if (data_ == nullptr) return;
  cuda::device_free(device_, data_, length_ * element_bytes(f64_));
  data_ = nullptr;
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(length_ * element_bytes(f64_)));
}

void* DeviceArray::data(Napi::Env env, const std::string& name) const {
  if (data_ == nullptr) throw Napi::Error::New(env, name + " is a disposed DeviceArray");
  return data_;
}

// upload(source, offset) / download(target, offset): the whole typed array, to or from elements [offset, ...).
void DeviceArray::Transfer(const Napi::CallbackInfo& info, bool upload) {
  const Napi::Env env = info.Env();
  char* device = static_cast<char*>(data(env, "this"));
  const napi_typedarray_type type = f64_ ? napi_float64_array : napi_float32_array;
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_type_error(
        env, std::string(upload ? "source" : "target") + " must be a " + (f64_ ? "Float64Array" : "Float32Array"));
  }
  Napi::TypedArray array = info[0].As<Napi::TypedArray>();
  if (array.ArrayBuffer().IsDetached()) throw_type_error(env, "the typed array's buffer is detached");
  const size_t offset =
      info.Length() > 1 ? static_cast<size_t>(index_argument(env, info[1], "offset", static_cast<double>(length_))) : 0;
  const size_t count = array.ElementLength();
  if (offset + count > length_) throw_range_error(env, "offset + length exceeds the DeviceArray");
  char* host = static_cast<char*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  const size_t bytes = count * element_bytes(f64_);
  try {
    if (upload) {
      cuda::copy_to_device(device_, device + offset * element_bytes(f64_), host, bytes);
    } else {
      cuda::copy_from_device(device_, host, device + offset * element_bytes(f64_), bytes);
    }
  } catch (const cuda::BackendError& e) {
    throw js_error(env, cuda_failure(e));
  }
}

Napi::Value DeviceArray::Upload(const Napi::CallbackInfo& info) {
  Transfer(info, true);
  return info.Env().Undefined();
}

Napi::Value DeviceArray::Download(const Napi::CallbackInfo& info) {
  Transfer(info, false);
  return info.Env().Undefined();
}

Napi::Value DeviceArray::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value DeviceArray::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(length_));
}
Napi::Value DeviceArray::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), f64_ ? "float64" : "float32");
}
Napi::Value DeviceArray::Device(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), device_); }
Napi::Value DeviceArray::Disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), data_ == nullptr);
}

}  // namespace sn::binding
