// decodeHalf(storage, src, dst, at): half-precision bytes widened into a Float32Array, synchronously (a chunk of a
// few MiB takes about a millisecond). Unmarshal and check; the conversion is native/cpu/half_convert.h's.
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "../cpu/half_convert.h"
#include "errors.h"
#include "half_convert.h"

namespace sn::binding {
namespace {

Napi::Value DecodeHalf(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const std::string storage = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (storage != "float16" && storage != "bfloat16") throw_type_error(env, "storage must be 'float16' or 'bfloat16'");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw_type_error(env, "src must be a Uint8Array");
  }
  if (info.Length() < 3 || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw_type_error(env, "dst must be a Float32Array");
  }
  const auto src = info[1].As<Napi::Uint8Array>();
  auto dst = info[2].As<Napi::Float32Array>();
  const double at = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : -1;
  if (!(at >= 0) || std::floor(at) != at) throw_range_error(env, "at must be a non-negative integer");
  if (src.ByteLength() % 2 != 0) throw_range_error(env, "src must hold whole 2-byte elements");
  const size_t n = src.ByteLength() / 2;
  if (at + static_cast<double>(n) > static_cast<double>(dst.ElementLength())) {
    throw_range_error(env, "dst must hold at + src.byteLength / 2 elements");
  }
  if (n == 0) return env.Undefined();
  // Data() is the view's first byte (ByteOffset included); a detached buffer has no data and length 0, so n == 0.
  const auto* from = reinterpret_cast<const uint16_t*>(src.Data());
  float* to = dst.Data() + static_cast<size_t>(at);
  const kernels::HalfConvert& convert = kernels::half_convert();
  (storage == "float16" ? convert.float16_to_float32 : convert.bfloat16_to_float32)(from, to, n);
  return env.Undefined();
}

}  // namespace

void add_half_convert(Napi::Env env, Napi::Object exports) { export_function<DecodeHalf>(env, exports, "decodeHalf"); }

}  // namespace sn::binding
