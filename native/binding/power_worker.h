#pragma once
// runAsync: the math of one PowerJob on libuv's thread pool, settled as a promise.
#include <napi.h>

#include <string>
#include <vector>

#include "errors.h"
#include "power_job.h"

namespace sn::binding {

class PowerWorker : public Napi::AsyncWorker {
 public:
  // Pins every typed array of the job for as long as the work runs.
  PowerWorker(Napi::Env env, PowerJob job, const std::vector<Napi::Object>& arrays);

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  Napi::Promise::Deferred deferred_;
  PowerJob job_;
  std::vector<Napi::ObjectReference> pinned_;
  Failure failure_;  // set by Execute when the job failed
};

}  // namespace sn::binding
