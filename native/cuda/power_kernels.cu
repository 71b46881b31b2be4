// The batched power-iteration and division kernels of the CUDA backend (interface: power_kernels.cuh). One operation
// per file under kernels/, each with its launcher, as in llm.c: the tiled and general sweeps, level 1 of the slot
// reduction, the finish (level 2 and the layer-wide step of each mode), the commit, on the primitives of
// block_reduce.cuh, async_copy.cuh and cluster.cuh, and the probes. They form one translation unit, compiled here for
// float and double.
// In the order a call launches them.
#include <stdexcept>
#include <type_traits>

#include "kernels/commit.cuh"
#include "kernels/finish.cuh"
#include "kernels/probe.cuh"
#include "kernels/slot_reduce.cuh"
#include "kernels/sweep_general.cuh"
#include "kernels/sweep_tiled.cuh"

#include "device_context.h"

namespace sn::cuda {

uint32_t block_threads() { return kThreads; }

uint32_t largest_cluster(int device, uint32_t limit) {
#ifdef SN_CUDA_EMULATION
  (void)device;
  return limit < sn_emulation::kMaxCluster ? limit : sn_emulation::kMaxCluster;
#else
  int supported = 0;
  if (cudaDeviceGetAttribute(&supported, cudaDevAttrClusterLaunch, device) != cudaSuccess || !supported) {
    cudaGetLastError();
    return 1;
  }
  uint32_t c = 1;
  while (c * 2 <= limit) c *= 2;
  for (; c > 1; c /= 2) {
    cudaLaunchAttribute attribute;
    const cudaLaunchConfig_t config =
        cluster_launch_config(c, kThreads, tiled_sweep_shared_bytes(4), c, nullptr, attribute);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, sweep_tiled_kernel<float, true, 4, true>, &config) == cudaSuccess &&
        clusters > 0) {
      return c;
    }
    cudaGetLastError();
  }
  return 1;
#endif
}

size_t tiled_sweep_shared_bytes(uint32_t units) {
  return tiled_ring_bytes(units) + tiled_scratch_doubles() * sizeof(double);
}

void prepare_kernels() {
  prepare_tiled<float, true>();
  prepare_tiled<float, false>();
  prepare_tiled<double, false>();
}

template <typename T>
void launch_sweep(const SweepLaunch& launch, const DeviceLayer<T>* layers, DeviceLayerState* states,
                  DeviceBatchFlags* flags, const SweepItem* items, SweepMode mode, bool mixed, double eps,
                  cudaStream_t stream) {
  if (launch.item_count == 0) return;
  if (launch.kind == SweepKind::kGeneral)
    return launch_general<T>(launch, layers, states, flags, items, mode, eps, stream);
  if constexpr (std::is_same_v<T, float>) {
    if (mixed) return launch_tiled<float, true>(launch, layers, states, items, mode, stream);
  }
  launch_tiled<T, false>(launch, layers, states, items, mode, stream);
}

#define SN_INSTANTIATE(T)                                                                                             \
  template void launch_sweep<T>(const SweepLaunch&, const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*,      \
                                const SweepItem*, SweepMode, bool, double, cudaStream_t);                             \
  template void launch_reduce<T>(const DeviceLayer<T>*, const DeviceLayerState*, const ReduceItem*, size_t, uint32_t, \
                                 cudaStream_t);                                                                       \
  template void launch_finish<T>(const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*, uint32_t*,              \
                                 const FinishItem*, size_t, FinishMode, const KernelParams&, cudaStream_t);           \
  template void launch_commit<T>(const DeviceLayer<T>*, const DeviceLayerState*, const DeviceBatchFlags*,             \
                                 const CommitItem*, size_t, size_t, uint32_t, cudaStream_t);
SN_INSTANTIATE(float)
SN_INSTANTIATE(double)
#undef SN_INSTANTIATE

}  // namespace sn::cuda
