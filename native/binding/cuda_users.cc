#include "cuda_users.h"

#include <mutex>
#include <set>

#include "../cuda/cuda_backend.h"

namespace sn::binding {
namespace {

std::mutex users_mutex;
std::set<napi_env>& users() {
  static auto* s = new std::set<napi_env>;  // never destroyed: hooks may run during process teardown
  return *s;
}

void release(void* arg) {
  {
    std::lock_guard<std::mutex> lock(users_mutex);
    users().erase(static_cast<napi_env>(arg));
  }
  cuda::release_user();
}

}  // namespace

void ensure_cuda_user(Napi::Env env) {
  napi_env raw = env;
  {
    std::lock_guard<std::mutex> lock(users_mutex);
    if (!users().insert(raw).second) return;
  }
  cuda::acquire_user();
  napi_add_env_cleanup_hook(raw, release, raw);  // if it cannot be added, the environment stays a user until exit
}

}  // namespace sn::binding
