#pragma once
// Host-side planning of one batched CUDA call: which thread block sweeps which rows and columns of which layer, how
// the partial slots are reduced, how the division is split, and where each layer's scratch lives. Plain C++ with no
// CUDA, so the CPU build and its tests cover it (the addon's internal.planCudaBatch exposes it to the test suite).
//
// A layer's plan depends on its shape and on the device (DeviceCaps), never on the rest of the batch: its sums then
// run in the same order alone or in any batch, so a batch gives each layer the same bits as a normalizer of its own.
// How a weight is loaded (16-byte vectors or single elements, PlanInput::vector_loads) never changes an order either.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../common/codes.h"
#include "../common/matrix_layout.h"

namespace sn::cuda {

// What the planner needs of the device.
struct DeviceCaps {
  uint32_t multiprocessors = 132;
  uint32_t max_cluster = 8;  // largest thread-block cluster the tiled sweep may use; 1 without clusters (sm_80)
  uint32_t block_threads = 256;
};

// The knobs of the plan, with the values the kernels were written for. SN_CUDA_TUNING overrides them for tuning runs
// on a GPU (device_context.cu reads it; docs/cuda.md lists the keys).
struct PlanTuning {
  uint32_t blocks_per_sm = 4;       // sweep blocks a large layer aims for, per multiprocessor
  uint32_t min_rows_per_slot = 48;  // a slot writes tile_cols doubles once: keep that small against its rows
  uint32_t slots_per_group = 16;    // level 1 of the slot reduction sums this many slots
  uint32_t finish_columns_per_thread = 2;
  uint32_t divide_elements = 1u << 16;  // elements per division item
  uint32_t divide_blocks_per_sm = 8;    // the division's grid-stride grid
  uint32_t max_units = 4;               // 16-byte units of a row each tiled-sweep thread may keep (1, 2 or 4)
};

enum class SweepKind : uint32_t {
  kGeneral = 0,  // sweep_general.cuh: a block sweeps whole rows, partials per 32-row group; any shape; 1-D weights
  kTiled = 1,    // sweep_tiled.cuh: a cluster of `tiles` blocks shares rows, each keeping its columns in registers
};

// One block of a sweep: rows [row_begin, row_end) of a layer, columns of tile `tile` (tiled) or all (general),
// summing its share of Mᵀd into partial slot `slot`. A tiled layer's cluster is `tiles` consecutive items, tile 0
// first.
struct SweepItem {
  uint32_t layer;
  uint32_t slot;
  uint32_t tile;
  uint32_t reserved;
  uint64_t row_begin;
  uint64_t row_end;
};

// One launch of a sweep kernel: items [item_begin, item_begin + item_count) of BatchPlan::sweep.
struct SweepLaunch {
  SweepKind kind;
  uint32_t cluster;       // blocks per cluster (tiled); 1 for the general sweep
  uint32_t units;         // 16-byte units per thread (tiled)
  uint32_t vector_loads;  // 1: 16-byte loads; 0: element loads (same sums, same bits)
  uint32_t item_begin;
  uint32_t item_count;
};

// One block of level 1 of the slot reduction: slots [group·slots_per_group, ...) summed into the group's first slot,
// over columns [col_begin, col_end).
struct ReduceItem {
  uint32_t layer;
  uint32_t group;
  uint64_t col_begin;
  uint64_t col_end;
};

// One block of the finish: level 2 of the slot reduction over columns [col_begin, col_end), then (the layer's last
// block) the layer-wide step.
struct FinishItem {
  uint32_t layer;
  uint32_t chunk;
  uint64_t col_begin;
  uint64_t col_end;
};

// The commit: kVectors writes a layer's u and v (one block each, first); kDivide divides elements [begin, end) of a
// layer (grid-strided by BatchPlan::divide_blocks blocks).
struct CommitItem {
  uint32_t layer;
  CommitKind kind;
  uint64_t begin;
  uint64_t end;
};

struct PlanInput {
  MatrixLayout layout;
  bool vector_norm = false;
  bool has_out = false;       // the device divides this layer (false for host layers: the host divides them)
  bool vector_loads = false;  // its weight is 16-byte aligned in device memory
};

struct LayerPlan {
  SweepKind kind = SweepKind::kGeneral;
  uint32_t slots = 0;      // row slots: partial vectors
  uint32_t tiles = 1;      // column tiles per slot (the cluster size)
  uint64_t tile_cols = 0;  // columns per tile, a multiple of the 16-byte unit
  uint32_t units = 0;      // 16-byte units per thread (tiled)
  uint32_t groups = 0;     // level-1 groups; 0 when the slots fit one group
  uint32_t chunks = 0;     // finish blocks
  size_t x_offset = 0;     // doubles in the double arena: x (cols), d (rows), t (cols), partial (slots·cols),
  size_t d_offset = 0;     //   slot stats (slots), chunk stats (chunks)
  size_t t_offset = 0;
  size_t partial_offset = 0;
  size_t slot_stats_offset = 0;
  size_t chunk_stats_offset = 0;
};

struct BatchPlan {
  std::vector<LayerPlan> layers;
  std::vector<SweepItem> sweep;
  std::vector<SweepLaunch> launches;  // general first, then tiled by (cluster, units, loads)
  std::vector<ReduceItem> reduce;
  std::vector<FinishItem> finish;
  std::vector<CommitItem> commit;  // kVectors items first, then kDivide
  uint32_t vector_items = 0;
  uint32_t divide_blocks = 0;
  size_t doubles = 0;  // the double arena's length
};

// Every item list is in layer order within a launch, and each layer's items are contiguous. `iterated` says whether
// u and v get committed (false in eval mode). Throws std::length_error when a count does not fit the kernels' 32-bit
// indices.
BatchPlan plan_batch(const std::vector<PlanInput>& layers, size_t element_bytes, bool iterated, const DeviceCaps& caps,
                     const PlanTuning& tuning = PlanTuning{});

}  // namespace sn::cuda
