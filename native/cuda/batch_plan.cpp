// plan_batch() (batch_plan.h): each layer's sweep geometry (tiles, units, slots), its reduction and finish blocks, its
// scratch offsets, and the commit's items.
#include "batch_plan.h"

#include <algorithm>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>

namespace sn::cuda {
namespace {

uint32_t checked_u32(size_t n, const char* what) {
  if (n > std::numeric_limits<uint32_t>::max()) throw std::length_error(std::string("spectral-norm: too many ") + what);
  return static_cast<uint32_t>(n);
}

size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// Units per thread as the tiled sweep is compiled for them: 1, 2 or 4.
uint32_t compiled_units(size_t units) { return units <= 1 ? 1 : units <= 2 ? 2 : units <= 4 ? 4 : 0; }

struct TileChoice {
  bool tiled = false;
  uint32_t tiles = 1;
  uint64_t tile_cols = 0;
  uint32_t units = 0;
};

// The tiled sweep keeps a thread's columns of every row in registers, so a tile may hold at most
// block_threads · units · unit columns. Prefer two units or fewer per thread (registers for four blocks per SM), in the
// smallest cluster that allows it; else up to max_units; else the general sweep. Matrices read in place with
// outer > 1 (dim ≠ 0) have strided rows and take the general sweep.
TileChoice choose_tiles(const MatrixLayout& L, size_t unit, const DeviceCaps& caps, const PlanTuning& tuning) {
  TileChoice best;
  if (L.outer != 1) return best;
  const uint32_t max_units = compiled_units(std::max<uint32_t>(1, tuning.max_units));
  for (const uint32_t preferred : {std::min<uint32_t>(2, max_units), max_units}) {
    for (uint32_t c = 1; c <= std::max<uint32_t>(1, caps.max_cluster); c *= 2) {
      const uint64_t tile = ceil_div(ceil_div(L.cols(), c), unit) * unit;
      const uint32_t units = compiled_units(ceil_div(tile, caps.block_threads * unit));
      if (units == 0 || units > preferred) continue;
      best.tiled = true;
      best.tiles = static_cast<uint32_t>(ceil_div(L.cols(), tile));
      best.tile_cols = tile;
      best.units = units;
      return best;
    }
  }
  return best;
}

}  // namespace

BatchPlan plan_batch(const std::vector<PlanInput>& layers, size_t element_bytes, bool iterated, const DeviceCaps& caps,
                     const PlanTuning& tuning) {
  BatchPlan plan;
  plan.layers.resize(layers.size());
  const size_t unit = 16 / element_bytes;
  const size_t threads = std::max<uint32_t>(32, caps.block_threads);
  const size_t target = std::max<size_t>(1, size_t(tuning.blocks_per_sm) * caps.multiprocessors);
  const size_t min_rows = std::max<uint32_t>(1, tuning.min_rows_per_slot);
  const size_t per_group = std::max<uint32_t>(2, tuning.slots_per_group);
  const size_t reduce_width = threads * 2;
  const size_t finish_width = threads * std::max<uint32_t>(1, tuning.finish_columns_per_thread);
  const size_t divide_piece = std::max<size_t>(unit, tuning.divide_elements / unit * unit);

  // First each layer's geometry, from its shape alone; then the launches, which may depend on the whole batch.
  struct Sweep {
    uint32_t layer;
    bool vector_loads;
  };
  std::vector<Sweep> tiled;
  std::vector<uint32_t> general;
  std::vector<CommitItem> divides;

  for (size_t i = 0; i < layers.size(); ++i) {
    const MatrixLayout& L = layers[i].layout;
    LayerPlan& p = plan.layers[i];
    const uint32_t layer = checked_u32(i, "layers");
    if (layers[i].vector_norm) {
      p.kind = SweepKind::kGeneral;
      p.slots = 1;
      general.push_back(layer);
    } else {
      const TileChoice tiles = choose_tiles(L, unit, caps, tuning);
      p.kind = tiles.tiled ? SweepKind::kTiled : SweepKind::kGeneral;
      p.tiles = tiles.tiles;
      p.tile_cols = tiles.tiled ? tiles.tile_cols : L.cols();
      p.units = tiles.units;
      // Enough blocks to fill the device from this layer alone, but no slot shorter than min_rows rows.
      const size_t slots = std::max<size_t>(1, std::min(ceil_div(target, p.tiles), L.rows / min_rows));
      p.slots = checked_u32(slots, "sweep slots");
      if (tiles.tiled) {
        tiled.push_back({layer, layers[i].vector_loads && L.cols() % unit == 0});
      } else {
        general.push_back(layer);
      }
      p.groups = slots > per_group ? checked_u32(ceil_div(slots, per_group), "slot groups") : 0;
      for (uint32_t g = 0; g < p.groups; ++g) {
        for (size_t c = 0; c < L.cols(); c += reduce_width) {
          plan.reduce.push_back({layer, g, c, std::min(c + reduce_width, L.cols())});
        }
      }
      p.chunks = checked_u32(ceil_div(L.cols(), finish_width), "finish blocks");
      for (uint32_t k = 0; k < p.chunks; ++k) {
        plan.finish.push_back({layer, k, k * finish_width, std::min((k + 1) * finish_width, L.cols())});
      }
      p.x_offset = plan.doubles;
      p.d_offset = p.x_offset + L.cols();
      p.t_offset = p.d_offset + L.rows;
      p.partial_offset = p.t_offset + L.cols();
      p.slot_stats_offset = p.partial_offset + slots * L.cols();
      p.chunk_stats_offset = p.slot_stats_offset + slots;
      plan.doubles = p.chunk_stats_offset + p.chunks;
      if (iterated) plan.commit.push_back({layer, CommitKind::kVectors, 0, 0});
    }
    if (layers[i].has_out) {
      for (size_t b = 0; b < L.size(); b += divide_piece) {
        divides.push_back({layer, CommitKind::kDivide, b, std::min(b + divide_piece, L.size())});
      }
    }
  }

  // Sweep items per launch key: (kind, cluster, units, vector loads), general first. A tiled layer may run in a launch
  // with a larger cluster (its extra ranks own no columns and add +0 to each row's sum), more units per thread (zeros
  // too) or element loads, with the same sums; so a batch that fits one wave of blocks runs all its tiled layers in one
  // launch, for latency, and a larger batch gives each kind of layer the launch that suits it.
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>, std::vector<SweepItem>> sweeps;
  for (const uint32_t layer : general) {
    const LayerPlan& p = plan.layers[layer];
    std::vector<SweepItem>& list = sweeps[{0, 1, 0, 0}];
    const uint64_t rows = layers[layer].vector_norm ? 1 : layers[layer].layout.rows;
    for (uint32_t k = 0; k < p.slots; ++k)
      list.push_back({layer, k, 0, 0, rows * k / p.slots, rows * (k + 1) / p.slots});
  }
  size_t tiled_blocks = 0;
  uint32_t widest = 1, most_units = 1;
  bool all_vector = true;
  for (const Sweep& t : tiled) {
    const LayerPlan& p = plan.layers[t.layer];
    tiled_blocks += size_t(p.slots) * p.tiles;
    widest = std::max(widest, p.tiles);
    most_units = std::max(most_units, p.units);
    all_vector = all_vector && t.vector_loads;
  }
  const bool merged = tiled_blocks <= target;
  for (const Sweep& t : tiled) {
    const LayerPlan& p = plan.layers[t.layer];
    const uint32_t cluster = merged ? widest : p.tiles;
    const uint32_t units = merged ? most_units : p.units;
    const bool vector = merged ? all_vector : t.vector_loads;
    std::vector<SweepItem>& list = sweeps[{1, cluster, units, vector ? 1u : 0u}];
    const uint64_t rows = layers[t.layer].layout.rows;
    for (uint32_t k = 0; k < p.slots; ++k) {
      for (uint32_t tile = 0; tile < cluster; ++tile) {
        list.push_back({t.layer, k, tile, 0, rows * k / p.slots, rows * (k + 1) / p.slots});
      }
    }
  }

  for (auto& [key, items] : sweeps) {
    SweepLaunch launch{};
    launch.kind = static_cast<SweepKind>(std::get<0>(key));
    launch.cluster = std::get<1>(key);
    launch.units = std::get<2>(key);
    launch.vector_loads = std::get<3>(key);
    launch.item_begin = checked_u32(plan.sweep.size(), "sweep blocks");
    launch.item_count = checked_u32(items.size(), "sweep blocks");
    plan.sweep.insert(plan.sweep.end(), items.begin(), items.end());
    plan.launches.push_back(launch);
  }
  plan.vector_items = checked_u32(plan.commit.size(), "commit blocks");
  plan.commit.insert(plan.commit.end(), divides.begin(), divides.end());
  plan.divide_blocks = static_cast<uint32_t>(std::min<size_t>(
      divides.size(), size_t(caps.multiprocessors) * std::max<uint32_t>(1, tuning.divide_blocks_per_sm)));
  checked_u32(plan.sweep.size(), "sweep blocks");
  checked_u32(plan.reduce.size(), "reduce blocks");
  checked_u32(plan.finish.size(), "finish blocks");
  checked_u32(plan.commit.size(), "commit blocks");
  return plan;
}

}  // namespace sn::cuda
