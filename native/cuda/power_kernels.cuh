#pragma once
// The batched power-iteration and division kernels' interface: what the launchers take. The kernels and their
// launchers live in kernels/, one operation per file, compiled by power_kernels.cu. One launch covers every layer of
// a batch; the per-block work lists come from batch_plan.h. Every reduction has a fixed order (no float atomics), so
// results are bitwise identical run to run, and a layer's blocks depend on its shape alone, so it gets the same bits
// alone or in any batch.
//
// One iteration of a call, for every layer at once:
//   sweep      d = M x, and each block's share of Mᵀd over its rows, written once into its slot (sweep_tiled.cuh for
//              rows that fit a cluster's registers, sweep_general.cuh for the rest and for 1-D weights)
//   reduce     slots summed in groups of PlanTuning::slots_per_group (level 1 of the slot reduction; only for layers
//              with more slots than that)
//   finish     t = Mᵀd as the sum of the groups (level 2), its norm's partial sums, and in each layer's last block the
//              layer-wide step of the mode: norms, σ, the status, the next x
// then once per call:
//   commit     u, v and W/σ, written only when every layer of the batch is finite (all or nothing)
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/codes.h"
#include "../common/power_contract.h"
#include "batch_plan.h"

namespace sn::cuda {

// What one layer's blocks need, uploaded with the plan (only when it changes).
template <typename T>
struct DeviceLayer {
  const T* w;  // the weight
  T* out;      // where W/σ goes on the device, or nullptr (no division, or a host layer divided on the host)
  T* u;        // start vectors, replaced by the commit kernel on success
  T* v;
  double* x;            // cols: the right vector of the next sweep (written by the finish)
  double* d;            // rows: M x
  double* t;            // cols: Mᵀd, the sum of the partial slots
  double* partial;      // slots × cols: each sweep block's share of Mᵀd; level 1 sums groups in place
  double* slot_stats;   // per slot: Σ d² over the slot's rows
  double* chunk_stats;  // per finish chunk: Σ t'² over its columns, t' = t / t_den
  uint64_t outer, rows, inner, cols, size;
  uint64_t tile_cols;  // tiled sweep: columns per cluster rank
  uint32_t slots;      // row slots (partial vectors)
  uint32_t groups;     // level-1 groups (0: level 2 reads the slots)
  uint32_t chunks;     // finish blocks
  int32_t vector_norm;
};

// Per-layer results and progress. Zero is the state a call starts from (one memset per call): status Normalized,
// nothing done, nothing failed, no finish run yet.
struct DeviceLayerState {
  double sigma;
  double previous;  // converge mode: the previous estimate
  double u_den;     // the commit's u = T(d / u_den)
  double t_den;     // the commit's v = T((t / t_den) / v_den)
  double v_den;
  LayerStatus status;
  int32_t iterations_run;
  int32_t converged;
  int32_t done;    // converge mode, and 1-D weights: nothing more to compute
  int32_t retry;   // converge mode: the rescaled first sweep is pending
  int32_t failed;  // a non-finite value was met; nothing more is computed for the layer
  int32_t rounds;  // finishes run so far: the first sweep reads the start vectors instead of x
  int32_t reserved;
};

// Flags shared by the whole batch.
struct DeviceBatchFlags {
  int32_t non_finite;  // some layer is LayerStatus::kNonFinite: the commit kernel then writes nothing
  int32_t done;        // converge mode: matrix layers finished (converged, out of iterations, or failed)
};

enum class SweepMode : int {
  kSweep = 0,       // d = M x and the partials of Mᵀd
  kAccumulate = 1,  // the partials of Mᵀd with d = u (the legacy order's first pass)
  kMatvec = 2,      // d = M x only (eval mode, the legacy order's last iteration)
};

enum class FinishMode : int {
  kDefault = 0,  // u ← d/max(‖d‖,eps), v ← normalize(Wᵀu); σ = ‖t‖²/max(‖t‖,eps) after the last iteration
  kLegacyFirstV = 1,  // v ← normalize(Wᵀu) from the start u
  kLegacy = 2,        // u ← normalize(W v), σ = ‖d‖²/max(‖d‖,eps); then v ← normalize(Wᵀu) unless last
  kEval = 3,          // σ = u·(W v)
  kConverge = 4,      // exact normalisation until σ settles
};

struct KernelParams {
  double eps;
  double tolerance;
  int32_t iterations;        // the call's iteration count
  int32_t last;              // this finish is the last of the call (fixed modes): set the statuses, write no x
  uint32_t slots_per_group;  // level 1's group size (PlanTuning::slots_per_group): level 2 reads every such slot
  uint32_t reserved;
};

// What the launchers need of the device, set once per context (device_context.cu).
void prepare_kernels();    // raises the dynamic shared-memory limit of the tiled sweeps; call once per device
uint32_t block_threads();  // threads per block of every kernel (256; fewer in the CPU emulation)

// Dynamic shared memory of a tiled sweep block with `units` 16-byte units per thread.
size_t tiled_sweep_shared_bytes(uint32_t units);

// Each launcher checks the launch and throws CudaError. `mixed`: Precision::kMixed with float weights.
template <typename T>
void launch_sweep(const SweepLaunch& launch, const DeviceLayer<T>* layers, DeviceLayerState* states,
                  DeviceBatchFlags* flags, const SweepItem* items, SweepMode mode, bool mixed, double eps,
                  cudaStream_t stream);
template <typename T>
void launch_reduce(const DeviceLayer<T>* layers, const DeviceLayerState* states, const ReduceItem* items,
                   size_t item_count, uint32_t slots_per_group, cudaStream_t stream);
template <typename T>
void launch_finish(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags, uint32_t* counters,
                   const FinishItem* items, size_t item_count, FinishMode mode, const KernelParams& params,
                   cudaStream_t stream);
template <typename T>
void launch_commit(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                   const CommitItem* items, size_t vector_items, size_t divide_items, uint32_t divide_blocks,
                   cudaStream_t stream);

// Probes (kernels/probe.cuh): an empty kernel, for the launch latency; a streaming read of `bytes`, for the read
// bandwidth (the sum lands in `sink`, so the reads cannot be dropped).
void launch_empty(cudaStream_t stream);
void launch_read(const void* data, size_t bytes, double* sink, uint32_t blocks, cudaStream_t stream);

}  // namespace sn::cuda
