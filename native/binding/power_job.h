#pragma once
// One batched call, unmarshalled from the job object lib/engine.ts builds (the PowerJob type of binding.d.ts).
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../common/power_contract.h"
#include "../cpu/power_iteration.h"
#include "../cuda/cuda_backend.h"

namespace sn::binding {

class PowerJob {
 public:
  // Checks the job again and takes raw pointers into its typed arrays; throws a JS TypeError or RangeError. Every
  // typed array the job reads or writes is appended to `arrays`, so an async caller can pin them.
  static PowerJob FromJs(const Napi::Object& job, std::vector<Napi::Object>* arrays);
  // The same from a PackedPowerJob (binding.d.ts), a host job on the CPU.
  static PowerJob FromPacked(const Napi::Object& job, std::vector<Napi::Object>* arrays);

  // Runs the math and writes the per-layer results. Any thread; no JS value is touched. Throws std::bad_alloc, or
  // cuda::BackendError for a job on a CUDA device.
  void Execute();

  // After Execute: false when some layer was non-finite, in which case nothing was modified.
  bool all_finite() const { return all_finite_; }

 private:
  // Checks and sets the options every job has, and the four per-layer result arrays (count_ must be set).
  void SetOptions(Napi::Env env, double iterations, double tolerance, double eps, bool legacy, double threads);
  void SetResults(Napi::Env env, const Napi::Value& sigma, const Napi::Value& status, const Napi::Value& iterations_run,
                  const Napi::Value& converged, std::vector<Napi::Object>* arrays);

  bool f64_ = false;
  std::vector<LayerBuffers<float>> f32_layers_;
  std::vector<LayerBuffers<double>> f64_layers_;
  int device_ = -1;  // >= 0: the job runs on this CUDA device
  std::vector<cuda::CudaLayerBuffers<float>> f32_cuda_layers_;
  std::vector<cuda::CudaLayerBuffers<double>> f64_cuda_layers_;
  PowerOptions options_;
  size_t count_ = 0;
  double* sigma_ = nullptr;
  int32_t* status_ = nullptr;
  int32_t* iterations_run_ = nullptr;
  uint8_t* converged_ = nullptr;
  bool all_finite_ = false;
};

}  // namespace sn::binding
