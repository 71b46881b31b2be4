// The batched power-iteration and division kernels of the CUDA backend (interface: power_kernels.cuh). One kernel
// per file under kernels/, each with its launcher, as in llm.c: sweep (d = M x, partial Mᵀd), finish (t and the
// layer-wide step), commit (W/σ and u, v, all or nothing), on the block reductions of block_reduce.cuh. They form one
// translation unit, compiled here for float and double.
// In the order a call launches them.
#include "kernels/sweep.cuh"
#include "kernels/finish.cuh"
#include "kernels/commit.cuh"

namespace sn::cuda {

#define SN_INSTANTIATE(T)                                                                                       \
  template void launch_sweep<T>(const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*, const SweepItem*,   \
                                size_t, SweepMode, const KernelParams&, cudaStream_t);                          \
  template void launch_finish<T>(const DeviceLayer<T>*, DeviceLayerState*, DeviceBatchFlags*, uint32_t*,         \
                                 const FinishItem*, size_t, FinishMode, const KernelParams&, cudaStream_t);     \
  template void launch_commit<T>(const DeviceLayer<T>*, const DeviceLayerState*, const DeviceBatchFlags*,        \
                                 const CommitItem*, size_t, int, cudaStream_t);
SN_INSTANTIATE(float)
SN_INSTANTIATE(double)
#undef SN_INSTANTIATE

}  // namespace sn::cuda
