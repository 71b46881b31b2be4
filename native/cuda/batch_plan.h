#pragma once
// Host-side planning of one batched CUDA call: which thread block sweeps which rows of which layer, where each
// layer's scratch lives, and how the division is split. Plain C++ with no CUDA, so the CPU build and its tests cover
// it (the addon's planCudaBatch exposes it to the test suite).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../common/codes.h"
#include "../common/matrix_layout.h"

namespace sn::cuda {

// One block of the sweep kernel: rows [row_begin, row_end) of a layer, summing its part of Wᵀd into its own slot of
// the layer's partial buffer. For a 1-D weight the single item covers the whole vector.
struct SweepItem {
  uint32_t layer;
  uint32_t slot;  // index of this item's partial vector within its layer
  uint64_t row_begin;
  uint64_t row_end;
};

// One block of the finish kernel: the columns [col_begin, col_end) of a layer's t, summed over its partial slots.
struct FinishItem {
  uint32_t layer;
  uint32_t chunk;
  uint64_t col_begin;
  uint64_t col_end;
};

// One block of the commit kernel: kDivide divides elements [begin, end) of a layer; kVectors writes its u and v.
struct CommitItem {
  uint32_t layer;
  CommitKind kind;
  uint64_t begin;
  uint64_t end;
};

struct PlanInput {
  MatrixLayout layout;
  bool vector_norm = false;
  bool has_out = false;
};

struct LayerPlan {
  uint32_t sweep_items = 0;   // partial slots
  uint32_t finish_chunks = 0;
  size_t x_offset = 0;        // doubles in the double arena: x (cols), d (rows), t (cols)
  size_t d_offset = 0;
  size_t t_offset = 0;
  size_t partial_offset = 0;  // sweep_items · cols doubles
  size_t u_new_offset = 0;    // elements in the dtype arena: u_new (rows), v_new (cols)
  size_t v_new_offset = 0;
};

struct BatchPlan {
  std::vector<LayerPlan> layers;
  std::vector<SweepItem> sweep;
  std::vector<FinishItem> finish;
  std::vector<CommitItem> commit;
  size_t doubles = 0;   // the double arena's length
  size_t elements = 0;  // the dtype arena's length
};

struct PlanTuning {
  size_t sweep_elements = size_t(1) << 15;  // elements of W per sweep block: 8192² gets 256 blocks, ~2 per SM
  size_t finish_columns = 2048;                 // columns per finish block
  size_t commit_elements = size_t(1) << 16;     // elements per division block
};

// Every item list is in layer order, and each layer's items are contiguous. `iterated` says whether u and v get
// committed (false in eval mode). Throws std::length_error when a count does not fit the kernels' 32-bit indices.
BatchPlan plan_batch(const std::vector<PlanInput>& layers, size_t element_bytes, bool iterated,
                     const PlanTuning& tuning = PlanTuning{});

}  // namespace sn::cuda
