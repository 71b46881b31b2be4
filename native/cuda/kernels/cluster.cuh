#pragma once
// Thread-block clusters (sm_90): the blocks of a cluster run at the same time, synchronise with one barrier, and read
// each other's shared memory. The tiled sweep splits a row's columns over a cluster and adds its ranks' partial row
// sums in rank order. On sm_80 the planner never asks for a cluster (DeviceCaps::max_cluster = 1): rank 0, a block
// barrier. Also the block's dynamic shared memory. Part of power_kernels.cu (included there only).
#include "common.cuh"

#if !defined(SN_CUDA_EMULATION)
#include <cooperative_groups.h>
#endif

namespace sn::cuda {
namespace {

__device__ __forceinline__ unsigned char* dynamic_shared() {
#ifdef SN_CUDA_EMULATION
  return sn_emulation::dynamic_shared();
#else
  extern __shared__ __align__(16) unsigned char sn_dynamic_shared[];
  return sn_dynamic_shared;
#endif
}

// This block's rank in its cluster.
__device__ __forceinline__ unsigned cluster_rank() {
#if defined(SN_CUDA_EMULATION)
  return sn_emulation::cluster_rank();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().block_rank();
#else
  return 0;
#endif
}

// A barrier over every thread of the cluster, ordering shared-memory writes before it with reads after it.
__device__ __forceinline__ void cluster_sync() {
#if defined(SN_CUDA_EMULATION)
  sn_emulation::cluster_barrier();
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cooperative_groups::this_cluster().sync();
#else
  __syncthreads();
#endif
}

// The same shared-memory object in the block of rank `rank` of this cluster.
template <typename X>
__device__ __forceinline__ X* cluster_peer(X* shared, unsigned rank) {
#if defined(SN_CUDA_EMULATION)
  return static_cast<X*>(sn_emulation::cluster_peer(shared, rank));
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return cooperative_groups::this_cluster().map_shared_rank(shared, rank);
#else
  (void)rank;
  return shared;
#endif
}

}  // namespace
}  // namespace sn::cuda
