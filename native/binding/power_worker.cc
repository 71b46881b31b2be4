#include "power_worker.h"

#include <new>

#include "errors.h"

namespace sn::binding {

PowerWorker::PowerWorker(Napi::Env env, PowerJob job, const std::vector<Napi::Object>& arrays)
    : Napi::AsyncWorker(env, "spectral-norm:power"), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)) {
  pinned_.reserve(arrays.size());
  for (const Napi::Object& array : arrays) pinned_.push_back(Napi::Persistent(array));
}

void PowerWorker::Execute() {
  try {
    job_.Execute();
  } catch (const std::bad_alloc&) {
    out_of_memory_ = true;
    SetError("spectral-norm: out of memory for the job's scratch space; nothing was modified");
  } catch (const cuda::BackendError& e) {
    code_ = e.out_of_memory() ? "ERR_SPECTRAL_NORM_OUT_OF_MEMORY" : "ERR_SPECTRAL_NORM_CUDA";
    SetError(e.out_of_memory() ? std::string(e.what()) + "; out of device memory, nothing was modified" : e.what());
  } catch (const std::exception& e) {
    SetError(std::string("spectral-norm: ") + e.what());
  }
}

// In a worker thread that is being terminated, JS can no longer run: settling the promise fails, and so would
// throwing that failure to JS, which would end the process. Nobody can await the promise any more, so drop it.
void PowerWorker::OnOK() {
  try {
    deferred_.Resolve(Napi::Boolean::New(Env(), job_.all_finite()));
  } catch (const Napi::Error&) {
  }
}

void PowerWorker::OnError(const Napi::Error& error) {
  try {
    Napi::Error rejection = error;
    if (out_of_memory_) rejection = coded_error(Env(), "ERR_SPECTRAL_NORM_OUT_OF_MEMORY", error.Message());
    if (!code_.empty()) rejection = coded_error(Env(), code_, error.Message());
    deferred_.Reject(rejection.Value());
  } catch (const Napi::Error&) {
  }
}

}  // namespace sn::binding
