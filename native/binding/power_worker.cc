#include "power_worker.h"

namespace sn::binding {

PowerWorker::PowerWorker(Napi::Env env, PowerJob job, const std::vector<Napi::Object>& arrays)
    : Napi::AsyncWorker(env, "spectral-norm:power"),
      deferred_(Napi::Promise::Deferred::New(env)),
      job_(std::move(job)) {
  pinned_.reserve(arrays.size());
  for (const Napi::Object& array : arrays) pinned_.push_back(Napi::Persistent(array));
}

void PowerWorker::Execute() {
  try {
    job_.Execute();
  } catch (const std::exception&) {
    failure_ = job_failure();
    SetError(failure_.message);
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

void PowerWorker::OnError(const Napi::Error&) {
  try {
    deferred_.Reject(js_error(Env(), failure_).Value());
  } catch (const Napi::Error&) {
  }
}

}  // namespace sn::binding
