#pragma once
// Which Node.js environments (the main thread, each worker) use the CUDA backend. The first CUDA call of an
// environment registers it, and a Node-API cleanup hook releases it at the environment's teardown; when the last one
// goes, the CUDA backend frees its contexts (cuda_backend.h, release_user), so a worker that used the GPU and exits,
// or the process at exit, leaves no device or pinned memory behind.
#include <napi.h>

namespace sn::binding {

// Call on the JS thread before the environment's first CUDA work; cheap afterwards.
void ensure_cuda_user(Napi::Env env);

}  // namespace sn::binding
