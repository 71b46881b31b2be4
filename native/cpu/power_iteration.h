#pragma once
// Batched spectral normalization on the CPU: power iteration for σ, then W/σ. Knows nothing of Node.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../common/conv_geometry.h"
#include "../common/matrix_layout.h"
#include "../common/power_contract.h"

namespace sn {

template <typename T>
struct LayerBuffers {
  const T* weight = nullptr;
  T* out = nullptr;  // where W/σ goes; nullptr: no division (warm-up, estimate only); may equal weight
  T* u = nullptr;    // layout.rows elements; read, and replaced on success
  T* v = nullptr;    // layout.cols() elements; read, and replaced on success
  MatrixLayout layout;
  bool vector_norm = false;  // a 1-D weight: σ = ‖W‖ and no u, v (PyTorch's F.normalize)
  // A convolution layer: the operator is x ↦ conv2d(x, W) (conv_operator.h), layout is 1 × output × input, and the
  // weight is the kernel (conv.kernel_size() elements).
  bool is_conv = false;
  ConvGeometry conv;

  size_t weight_size() const { return is_conv ? conv.kernel_size() : layout.size(); }
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
