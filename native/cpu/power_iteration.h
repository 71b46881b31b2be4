#pragma once
// Batched spectral normalization on the CPU: power iteration for σ, then W/σ. Knows nothing of Node.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "matrix_layout.h"

namespace sn {

template <typename T>
struct LayerBuffers {
  const T* weight = nullptr;
  T* out = nullptr;  // where W/σ goes; nullptr: no division (warm-up, estimate only); may equal weight
  T* u = nullptr;    // layout.rows elements; read, and replaced on success
  T* v = nullptr;    // layout.cols() elements; read, and replaced on success
  MatrixLayout layout;
  bool vector_norm = false;  // a 1-D weight: σ = ‖W‖ and no u, v (PyTorch's F.normalize)
};

enum class LayerStatus : int32_t {
  kNormalized = 0,  // u, v replaced; out = W/σ
  kBelowEps = 1,    // |σ| ≤ eps: u and v kept, out = W unchanged
  kNonFinite = 2,   // NaN or ±Inf in W, or an overflow: nothing in the whole batch was modified
};

struct LayerResult {
  double sigma = 0;  // rounded to the weight's dtype, as the division uses it
  LayerStatus status = LayerStatus::kNormalized;
  int32_t iterations_run = 0;
  bool converged = false;
};

struct PowerOptions {
  // Fixed mode (tolerance < 0): exactly `iterations` power iterations with PyTorch's x / max(‖x‖, eps); 0 is eval
  // mode, σ = u·(W v) with u, v as they are. Converge mode (tolerance ≥ 0): at most `iterations`, stopping when σ
  // changes by at most tolerance·σ, with exact (scale-invariant) normalisation.
  int32_t iterations = 1;
  double tolerance = -1;
  double eps = 1e-12;
  bool legacy = false;  // torch.nn.utils.spectral_norm's order: v first, then u
  unsigned threads = 1;
};

// All or nothing: when any layer is non-finite, returns false and modifies no weight, out, u or v. Otherwise commits
// every layer and returns true. Throws std::bad_alloc when scratch memory cannot be had, with nothing modified.
template <typename T>
bool run_power_batch(const std::vector<LayerBuffers<T>>& layers, const PowerOptions& options,
                     std::vector<LayerResult>& results);

extern template bool run_power_batch<float>(const std::vector<LayerBuffers<float>>&, const PowerOptions&,
                                            std::vector<LayerResult>&);
extern template bool run_power_batch<double>(const std::vector<LayerBuffers<double>>&, const PowerOptions&,
                                             std::vector<LayerResult>&);

}  // namespace sn
