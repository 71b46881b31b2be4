#pragma once
// backendInfo(): what this build and this machine offer (binding.d.ts NativeInfo).
#include <napi.h>

namespace sn::binding {

Napi::Value BackendInfo(const Napi::CallbackInfo& info);

}  // namespace sn::binding
