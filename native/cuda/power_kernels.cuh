#pragma once
// The batched power-iteration and division kernels' interface: what the launchers take (the kernels and launchers
// live in kernels/, one per file, compiled by power_kernels.cu). One launch covers every layer of a batch;
// the per-block work lists come from batch_plan.h. Sums are accumulated in double for either dtype, as on the CPU,
// and every reduction has a fixed order (no float atomics), so results are bitwise identical run to run.
#include <cuda_runtime.h>

#include <cstdint>

#include "../common/codes.h"
#include "batch_plan.h"

namespace sn::cuda {

// What one layer's blocks need, uploaded once per call.
template <typename T>
struct DeviceLayer {
  const T* w;   // the weight
  T* out;       // where W/σ goes, or nullptr; may equal w
  T* u;         // start vectors, replaced by the commit kernel on success
  T* v;
  T* u_new;     // scratch results of the power iteration
  T* v_new;
  double* x;    // cols: the right vector as double
  double* d;    // rows: M x
  double* t;    // cols: Mᵀ d, the sum of the partial slots
  double* partial;
  uint64_t outer, rows, inner, cols, size;
  uint32_t sweep_items;
  uint32_t finish_chunks;
  int vector_norm;
};

// Per-layer results and the converge mode's progress, written by the kernels and copied back after the call.
struct DeviceLayerState {
  double sigma;
  double previous;     // converge mode: the previous estimate
  LayerStatus status;
  int32_t iterations_run;
  int32_t converged;
  int32_t active;      // converge mode: still iterating
  int32_t retry;       // converge mode: the rescaled first sweep is pending
  int32_t failed;      // a non-finite value was met; nothing more is computed for the layer
};

// Flags shared by the whole batch.
struct DeviceBatchFlags {
  int32_t non_finite;  // some layer is LayerStatus::kNonFinite: the commit kernel then writes nothing
  int32_t active;      // converge mode: layers still iterating
};

enum class SweepMode : int {
  kSweep = 0,       // d = M x and the partials of Mᵀd
  kAccumulate = 1,  // the partials of Mᵀd with d = u (the legacy order's first pass)
  kMatvec = 2,      // d = M x only (eval mode, the legacy order's last iteration)
};

enum class FinishMode : int {
  kDefault = 0,       // u ← d/max(‖d‖,eps), v ← normalize(Wᵀu); σ = ‖t‖²/max(‖t‖,eps) after the last iteration
  kLegacyFirstV = 1,  // v ← normalize(Wᵀu) from the start u
  kLegacy = 2,        // u ← normalize(W v), σ = ‖d‖²/max(‖d‖,eps); then v ← normalize(Wᵀu) unless last
  kEval = 3,          // σ = u·(W v)
  kConverge = 4,      // exact normalisation until σ settles
};

struct KernelParams {
  double eps;
  double tolerance;
  int32_t iterations;  // the call's iteration count
  int32_t iteration;   // 0-based index of this launch's iteration (fixed modes)
  int32_t last;        // this finish is the last of the call: set the statuses
  int32_t first;       // this sweep is the call's first: 1-D weights are done in it
};

// Each launcher checks the launch and throws CudaError.
template <typename T>
void launch_sweep(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                  const SweepItem* items, size_t item_count, SweepMode mode, const KernelParams& params,
                  cudaStream_t stream);
template <typename T>
void launch_finish(const DeviceLayer<T>* layers, DeviceLayerState* states, DeviceBatchFlags* flags,
                   uint32_t* counters, const FinishItem* items, size_t item_count, FinishMode mode,
                   const KernelParams& params, cudaStream_t stream);
template <typename T>
void launch_commit(const DeviceLayer<T>* layers, const DeviceLayerState* states, const DeviceBatchFlags* flags,
                   const CommitItem* items, size_t item_count, int iterated, cudaStream_t stream);

}  // namespace sn::cuda
