#pragma once
// What a power-iteration job asks of a backend and what it gets back per layer: the contract the CPU backend
// (native/cpu/power_iteration.h), the CUDA backend (native/cuda/cuda_backend.h) and the binding share.
#include <cstdint>

#include "codes.h"

namespace sn {

// How products of W and a vector are summed (PowerJob.precision in binding.d.ts). Float64 weights always use kFloat64.
enum class Precision : int32_t {
  kMixed = 0,    // float32 weights: float32 partial sums of at most 16 products per lane, combined in float64
  kFloat64 = 1,  // every product accumulated in float64
};

struct PowerOptions {
  // Fixed mode (tolerance < 0): exactly `iterations` power iterations with PyTorch's x / max(‖x‖, eps); 0 is eval
  // mode, σ = u·(W v) with u, v as they are. Converge mode (tolerance ≥ 0): at most `iterations`, stopping when σ
  // changes by at most tolerance·σ, with exact (scale-invariant) normalisation.
  int32_t iterations = 1;
  double tolerance = -1;
  double eps = 1e-12;
  bool legacy = false;   // torch.nn.utils.spectral_norm's order: v first, then u
  unsigned threads = 1;  // the CPU backend's thread budget; the CUDA backend ignores it
  Precision precision = Precision::kMixed;
};

struct LayerResult {
  double sigma = 0;  // rounded to the weight's dtype, as the division uses it
  LayerStatus status = LayerStatus::kNormalized;
  int32_t iterations_run = 0;
  bool converged = false;
};

}  // namespace sn
