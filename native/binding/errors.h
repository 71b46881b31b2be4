#pragma once
// The binding's safety net: TypeScript validates every argument first; these checks make sure a bad call from
// elsewhere becomes a JS exception rather than a crash.
#include <napi.h>

#include <string>

namespace sn::binding {

[[noreturn]] inline void throw_type_error(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

[[noreturn]] inline void throw_range_error(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

// An Error with a `code` property, for failures that are not the caller's argument (out of memory, say).
inline Napi::Error coded_error(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

}  // namespace sn::binding
