#pragma once
// Asynchronous copies from global to shared memory (cp.async, sm_80 and later): a thread issues copies, closes them
// into a group, and later waits until all but the newest N groups have landed, while it computes on earlier ones.
// Each thread reads back only what it copied itself, so waiting needs no barrier. The CPU emulation performs the
// copies when they are waited for, so reading a copy before its wait reads stale data there too.
// Part of power_kernels.cu (included there only).
#include "common.cuh"

namespace sn::cuda {
namespace {

// Copies kBytes (4, 8 or 16; both addresses aligned to it) from `global` to `shared`, asynchronously.
template <int kBytes>
__device__ __forceinline__ void copy_async(void* shared, const void* global) {
  static_assert(kBytes == 4 || kBytes == 8 || kBytes == 16, "cp.async copies 4, 8 or 16 bytes");
#ifdef SN_CUDA_EMULATION
  sn_emulation::copy_async(shared, global, kBytes);
#else
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  if constexpr (kBytes == 16) {
    // .cg: through L2 only; the weight is read once per sweep.
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(address), "l"(global), "n"(kBytes) : "memory");
  }
#endif
}

// Closes the copies issued since the last commit into one group (possibly empty).
__device__ __forceinline__ void copy_async_commit() {
#ifdef SN_CUDA_EMULATION
  sn_emulation::copy_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// Waits until at most kPending of this thread's groups are still in flight.
template <int kPending>
__device__ __forceinline__ void copy_async_wait() {
#ifdef SN_CUDA_EMULATION
  sn_emulation::copy_async_wait(kPending);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
#endif
}

}  // namespace
}  // namespace sn::cuda
