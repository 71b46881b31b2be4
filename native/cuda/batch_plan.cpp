// plan_batch() (batch_plan.h): each layer's blocks for the sweep, finish and commit kernels, and its scratch offsets.
#include "batch_plan.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace sn::cuda {
namespace {

uint32_t checked_u32(size_t n, const char* what) {
  if (n > std::numeric_limits<uint32_t>::max()) throw std::length_error(std::string("spectral-norm: too many ") + what);
  return static_cast<uint32_t>(n);
}

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

}  // namespace

BatchPlan plan_batch(const std::vector<PlanInput>& layers, size_t element_bytes, bool iterated,
                     const PlanTuning& tuning) {
  BatchPlan plan;
  plan.layers.resize(layers.size());
  // A layer's blocks depend on its own shape only, never on the rest of the batch: its sums then run in the same
  // order alone or in any batch, so a batch gives each layer the same bits as a normalizer of its own.
  const size_t per_block = tuning.sweep_elements;

  for (size_t i = 0; i < layers.size(); ++i) {
    const MatrixLayout& L = layers[i].layout;
    LayerPlan& p = plan.layers[i];
    const uint32_t layer = checked_u32(i, "layers");
    if (layers[i].vector_norm) {
      p.sweep_items = 1;
      plan.sweep.push_back({layer, 0, 0, 1});
    } else {
      // Row ranges: more for bigger layers, but each partial vector (cols doubles) must stay small against the
      // rows it sums, so the second stage reads far less than W: at least 16 rows of doubles' worth per slot.
      const size_t min_rows = std::max<size_t>(1, ceil_div(16 * sizeof(double), element_bytes));
      const size_t by_size = std::max<size_t>(1, ceil_div(L.size(), per_block));
      const size_t items = std::max<size_t>(1, std::min(by_size, L.rows / min_rows));
      p.sweep_items = checked_u32(items, "sweep blocks");
      for (size_t k = 0; k < items; ++k) {
        plan.sweep.push_back({layer, static_cast<uint32_t>(k), L.rows * k / items, L.rows * (k + 1) / items});
      }
      const size_t chunks = ceil_div(L.cols(), tuning.finish_columns);
      p.finish_chunks = checked_u32(chunks, "finish blocks");
      for (size_t k = 0; k < chunks; ++k) {
        plan.finish.push_back({layer, static_cast<uint32_t>(k), L.cols() * k / chunks, L.cols() * (k + 1) / chunks});
      }
      p.x_offset = plan.doubles;
      p.d_offset = p.x_offset + L.cols();
      p.t_offset = p.d_offset + L.rows;
      p.partial_offset = p.t_offset + L.cols();
      plan.doubles = p.partial_offset + items * L.cols();
      p.u_new_offset = plan.elements;
      p.v_new_offset = p.u_new_offset + L.rows;
      plan.elements = p.v_new_offset + L.cols();
      if (iterated) plan.commit.push_back({layer, CommitKind::kVectors, 0, 0});
    }
    if (layers[i].has_out) {
      const size_t pieces = ceil_div(L.size(), tuning.commit_elements);
      for (size_t k = 0; k < pieces; ++k) {
        plan.commit.push_back({layer, CommitKind::kDivide, L.size() * k / pieces, L.size() * (k + 1) / pieces});
      }
    }
  }
  checked_u32(plan.sweep.size(), "sweep blocks");
  checked_u32(plan.finish.size(), "finish blocks");
  checked_u32(plan.commit.size(), "commit blocks");
  return plan;
}

}  // namespace sn::cuda
