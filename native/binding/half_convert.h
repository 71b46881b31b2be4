#pragma once
// The addon's decodeHalf (binding.d.ts NativeAddon.decodeHalf).
#include <napi.h>

namespace sn::binding {

void add_half_convert(Napi::Env env, Napi::Object exports);

}  // namespace sn::binding
