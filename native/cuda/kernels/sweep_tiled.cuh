#pragma once
// The tiled sweep: one pass over W per power iteration, d = M x and each block's share of Mᵀd, for layers whose rows
// fit a cluster's registers (batch_plan.h, SweepKind::kTiled). A cluster of `tiles` blocks takes a range of rows (a
// slot); block k of the cluster owns column tile k, and each of its threads owns `units` 16-byte units of that tile,
// the same columns in every row. So a thread keeps its x and its share of Mᵀd in registers across all the slot's
// rows and writes the share once, at the end.
//
// Rows stream through a ring of shared memory by cp.async (async_copy.cuh): while the block reduces one step of
// kRowsPerStep rows, the next kStages − 1 steps are already in flight. A step: each thread's partial row sums (a
// float32 chunk of at most 16 products under Precision::kMixed), a block sum in warp order, then a cluster sum in rank
// order through distributed shared memory (cluster.cuh), so every thread of every rank holds the same d bits; then
// each thread adds d·W into its columns: under kMixed a float32 chunk of the step's rows, d scaled by a power of two
// so no float overflows, combined in float64.
//
// How a row is loaded (16-byte vectors, or single elements when unaligned) changes no sum: a thread owns the same
// columns either way. Part of power_kernels.cu (included there only).
#include <type_traits>

#include "async_copy.cuh"
#include "block_reduce.cuh"
#include "cluster.cuh"
#include "common.cuh"

namespace sn::cuda {
namespace {

constexpr int kRowsPerStep = 2;  // rows reduced together: one block barrier (and cluster barrier) per step
constexpr int kStages = 3;       // steps in the shared-memory ring: two in flight while one is used
// d is scaled below 2^-kRowShift of its step maximum, so kRowsPerStep products of float weights stay finite.
constexpr int kRowShift = kRowsPerStep <= 2 ? 2 : kRowsPerStep <= 4 ? 3 : kRowsPerStep <= 8 ? 4 : 5;
static_assert(kRowsPerStep <= 16, "a float32 chunk holds at most 16 products");
// Weights below this take float64 products under kMixed (see the sweep): a float32 product of them would be subnormal.
constexpr float kTinyWeight = 0x1p-96f;

__host__ __device__ constexpr size_t tiled_ring_bytes(uint32_t units) {
  return size_t(kStages) * kRowsPerStep * units * kThreads * 16;
}
// Block sums [2][kWarps][kRowsPerStep], then the cluster exchange [2][kRowsPerStep]: two of each, by step parity.
__host__ __device__ constexpr size_t tiled_scratch_doubles() { return 2 * kWarps * kRowsPerStep + 2 * kRowsPerStep; }

// The step's d: the block's partial row sums added warp by warp, then the cluster's ranks added rank by rank. Every
// thread of every rank returns the same bits. `parity` alternates the scratch so one barrier per step suffices.
__device__ __forceinline__ void reduce_rows(double (&dot)[kRowsPerStep], double* block_scratch, double* exchange,
                                            int parity, unsigned cluster) {
#pragma unroll
  for (int g = 0; g < kRowsPerStep; ++g) dot[g] = warp_sum(dot[g]);
  double* sums = block_scratch + parity * kWarps * kRowsPerStep;
  if ((threadIdx.x & 31) == 0) {
#pragma unroll
    for (int g = 0; g < kRowsPerStep; ++g) sums[(threadIdx.x >> 5) * kRowsPerStep + g] = dot[g];
  }
  __syncthreads();
#pragma unroll
  for (int g = 0; g < kRowsPerStep; ++g) {
    double s = 0;
    for (int w = 0; w < kWarps; ++w) s += sums[w * kRowsPerStep + g];
    dot[g] = s;
  }
  if (cluster <= 1) return;
  double* mine = exchange + parity * kRowsPerStep;
#pragma unroll
  for (int g = 0; g < kRowsPerStep; ++g) {
    if (threadIdx.x == g) mine[g] = dot[g];
  }
  cluster_sync();
#pragma unroll
  for (int g = 0; g < kRowsPerStep; ++g) {
    double s = 0;
    for (unsigned r = 0; r < cluster; ++r) s += cluster_peer(mine, r)[g];
    dot[g] = s;
  }
}

// One block per SweepItem; the items of a cluster are consecutive, tile k at rank k. Modes as the general sweep:
// kSweep computes d and the partials, kAccumulate only the partials with d = u, kMatvec only d.
// Blocks per SM the registers are capped for: 4 (64 registers) for up to two float32 units, fewer for more or wider.
template <typename T, int kUnits>
constexpr int kTiledBlocksPerSm = kUnits == 1 || (kUnits == 2 && sizeof(T) == 4) ? 4
                                  : kUnits == 2                                  ? 3
                                                                                 : 2;

template <typename T, bool kMixed, int kUnits, bool kVectorLoads>
__global__ void __launch_bounds__(kThreads, kTiledBlocksPerSm<T, kUnits>)
    sweep_tiled_kernel(const DeviceLayer<T>* layers, const DeviceLayerState* states, const SweepItem* items, int mode,
                       unsigned cluster) {
  using Acc = std::conditional_t<kMixed, float, double>;  // x and the products' chunks
  constexpr int kU = kUnit<T>;
  constexpr int kE = kUnits * kU;  // columns per thread
  static_assert(!kMixed || kE <= 16, "a float32 chunk holds at most 16 products");

  unsigned char* shared = dynamic_shared();
  T* ring = reinterpret_cast<T*>(shared);
  double* block_scratch = reinterpret_cast<double*>(shared + tiled_ring_bytes(kUnits));
  double* exchange = block_scratch + 2 * kWarps * kRowsPerStep;

  const SweepItem item = items[blockIdx.x];
  const DeviceLayer<T> L = layers[item.layer];
  const DeviceLayerState* st = states + item.layer;
  if (st->failed || st->done) return;  // the same for every rank of the cluster: nobody waits for this block
  const bool matvec = mode != static_cast<int>(SweepMode::kAccumulate);
  const bool accumulate = mode != static_cast<int>(SweepMode::kMatvec);
  const uint64_t tile_begin = uint64_t(item.tile) * L.tile_cols;
  const uint64_t tile_end = tile_begin + L.tile_cols < L.cols ? tile_begin + L.tile_cols : L.cols;
  const uint64_t row_begin = item.row_begin;
  const uint64_t row_end = item.row_end;
  const int steps = static_cast<int>((row_end - row_begin + kRowsPerStep - 1) / kRowsPerStep);
  // This thread's unit j starts at column(j); its columns are column(j) + q, q < kU.
  auto column = [&](int j) { return tile_begin + (uint64_t(threadIdx.x) + uint64_t(kThreads) * j) * kU; };
  auto slot = [&](int stage, int g, int j) {
    return ring + ((size_t(stage * kRowsPerStep + g) * kUnits + j) * kThreads + threadIdx.x) * kU;
  };

  // Copies step s's rows of this thread's units into the ring (zeros past the slot's rows or the tile's columns).
  auto issue = [&](int s) {
    const int stage = s % kStages;
#pragma unroll
    for (int g = 0; g < kRowsPerStep; ++g) {
      const uint64_t row = row_begin + uint64_t(s) * kRowsPerStep + g;
      const T* source = L.w + row * L.cols;
#pragma unroll
      for (int j = 0; j < kUnits; ++j) {
        T* target = slot(stage, g, j);
        const uint64_t c = column(j);
        if (row < row_end && c + kU <= tile_end) {
          if constexpr (kVectorLoads) {
            copy_async<16>(target, source + c);
          } else {
#pragma unroll
            for (int q = 0; q < kU; ++q) copy_async<static_cast<int>(sizeof(T))>(target + q, source + c + q);
          }
        } else {
          // A unit cut by the tile's end (element loads only: 16-byte loads need whole units), or past it.
#pragma unroll 1
          for (int q = 0; q < kU; ++q) {
            if (row < row_end && c + q < tile_end) copy_async<static_cast<int>(sizeof(T))>(target + q, source + c + q);
            else target[q] = T(0);
          }
        }
      }
    }
  };

  // x in registers. Under kMixed each thread scales its own x by a power of two so that its largest |x| is in
  // [1/8, 1/4): a float32 chunk of ≤ 16 products then stays below the norm of the weights it multiplies (no overflow
  // unless σ itself leaves float32's range), and x_scale, exact, brings the chunk back when it joins float64.
  Acc x[kE];
  double total[kE];
  double x_scale = 1;
  const bool first = st->rounds == 0;  // the call's first sweep reads the start vector v
  {
    double raw[kE];
    double largest = 0;
#pragma unroll
    for (int j = 0; j < kUnits; ++j) {
#pragma unroll
      for (int q = 0; q < kU; ++q) {
        const uint64_t c = column(j) + q;
        raw[j * kU + q] = !matvec || c >= tile_end ? 0.0 : first ? static_cast<double>(L.v[c]) : load_global(L.x + c);
        largest = fmax(largest, fabs(raw[j * kU + q]));
        total[j * kU + q] = 0;
      }
    }
    int shift = 0;
    if (kMixed && largest > 0 && isfinite(largest)) shift = ilogb(largest) + 3;
    x_scale = ldexp(1.0, shift);
#pragma unroll
    for (int e = 0; e < kE; ++e) x[e] = static_cast<Acc>(ldexp(raw[e], -shift));
  }

  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) issue(s);
    copy_async_commit();
  }
  double sum_of_squares = 0;  // rank 0, thread 0: Σ d² over the slot, in row order
  for (int i = 0; i < steps; ++i) {
    if (i + kStages - 1 < steps) issue(i + kStages - 1);
    copy_async_commit();
    copy_async_wait<kStages - 1>();  // this thread's copies of step i have landed
    const int stage = i % kStages;
    const uint64_t row0 = row_begin + uint64_t(i) * kRowsPerStep;
    const int rows = row_end - row0 < uint64_t(kRowsPerStep) ? static_cast<int>(row_end - row0) : kRowsPerStep;
    // Under kMixed: this thread's weights in the step are all so small (near float32's subnormals) that float32
    // products would lose their bits; then its products for the step are taken in float64.
    bool tiny = false;
    if constexpr (kMixed) {
      float biggest = 0;
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) {
#pragma unroll
        for (int j = 0; j < kUnits; ++j) {
#pragma unroll
          for (int q = 0; q < kU; ++q) biggest = fmaxf(biggest, fabsf(static_cast<float>(slot(stage, g, j)[q])));
        }
      }
      tiny = !(biggest >= kTinyWeight) && biggest == biggest;  // not NaN: a NaN goes through the float32 path
    }
    double d[kRowsPerStep];
    if (matvec) {
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) {
        if (!tiny) {
          Acc chunk = 0;  // at most 16 products
#pragma unroll
          for (int j = 0; j < kUnits; ++j) {
            const T* w = slot(stage, g, j);
#pragma unroll
            for (int q = 0; q < kU; ++q) chunk = fma(static_cast<Acc>(w[q]), x[j * kU + q], chunk);
          }
          d[g] = static_cast<double>(chunk) * x_scale;
        } else {
          double exact = 0;
#pragma unroll
          for (int j = 0; j < kUnits; ++j) {
            const T* w = slot(stage, g, j);
#pragma unroll
            for (int q = 0; q < kU; ++q)
              exact = fma(static_cast<double>(w[q]), static_cast<double>(x[j * kU + q]), exact);
          }
          d[g] = exact * x_scale;
        }
      }
      reduce_rows(d, block_scratch, exchange, i & 1, cluster);
      if (item.tile == 0) {
#pragma unroll
        for (int g = 0; g < kRowsPerStep; ++g) {
          if (g < rows && threadIdx.x == g) L.d[row0 + g] = d[g];
        }
        if (threadIdx.x == 0) {
          for (int g = 0; g < rows; ++g) sum_of_squares += d[g] * d[g];
        }
      }
    } else {
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) d[g] = g < rows ? static_cast<double>(L.u[row0 + g]) : 0.0;
    }
    if (!accumulate) continue;
    if (kMixed && !tiny) {
      // The step's float32 chunk: d scaled by one power of two for all its rows (exact), so that no product or sum
      // of kRowsPerStep products overflows, and the chunk scaled back exactly when added into float64.
      double largest = 0;
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) {
        if (g < rows) largest = fmax(largest, fabs(d[g]));
      }
      int exponent = 0;
      if (largest > 0 && isfinite(largest)) frexp(largest, &exponent);
      const int shift = exponent + kRowShift;
      const double scale = ldexp(1.0, shift);
      float scaled[kRowsPerStep];
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) scaled[g] = g < rows ? static_cast<float>(ldexp(d[g], -shift)) : 0.0f;
#pragma unroll
      for (int j = 0; j < kUnits; ++j) {
#pragma unroll
        for (int q = 0; q < kU; ++q) {
          float chunk = 0;
#pragma unroll
          for (int g = 0; g < kRowsPerStep; ++g)
            chunk = fmaf(scaled[g], static_cast<float>(slot(stage, g, j)[q]), chunk);
          total[j * kU + q] = fma(static_cast<double>(chunk), scale, total[j * kU + q]);
        }
      }
    } else {
#pragma unroll
      for (int g = 0; g < kRowsPerStep; ++g) {
        if (g >= rows) break;
#pragma unroll
        for (int j = 0; j < kUnits; ++j) {
          const T* w = slot(stage, g, j);
#pragma unroll
          for (int q = 0; q < kU; ++q) total[j * kU + q] = fma(d[g], static_cast<double>(w[q]), total[j * kU + q]);
        }
      }
    }
  }
  copy_async_wait<0>();
  if (matvec && cluster > 1) cluster_sync();  // no rank leaves while another may still read its exchange
  if (accumulate) {
    double* partial = L.partial + uint64_t(item.slot) * L.cols;
#pragma unroll
    for (int j = 0; j < kUnits; ++j) {
#pragma unroll
      for (int q = 0; q < kU; ++q) {
        const uint64_t c = column(j) + q;
        if (c < tile_end) partial[c] = total[j * kU + q];
      }
    }
  }
  if (matvec && item.tile == 0 && threadIdx.x == 0) L.slot_stats[item.slot] = sum_of_squares;
}

template <typename T, bool kMixed, int kUnits, bool kVectorLoads>
void launch_tiled(const SweepLaunch& launch, const DeviceLayer<T>* layers, const DeviceLayerState* states,
                  const SweepItem* items, SweepMode mode, cudaStream_t stream) {
  auto kernel = &sweep_tiled_kernel<T, kMixed, kUnits, kVectorLoads>;
  const size_t shared = tiled_ring_bytes(kUnits) + tiled_scratch_doubles() * sizeof(double);
  SN_LAUNCH_EX(kernel, launch.item_count, kThreads, shared, launch.cluster, stream, layers, states,
               items + launch.item_begin, static_cast<int>(mode), launch.cluster);
  SN_CUDA_CHECK_LAUNCH("sweep_tiled_kernel");
}

template <typename T, bool kMixed, int kUnits>
void launch_tiled(const SweepLaunch& launch, const DeviceLayer<T>* layers, const DeviceLayerState* states,
                  const SweepItem* items, SweepMode mode, cudaStream_t stream) {
  if (launch.vector_loads) {
    launch_tiled<T, kMixed, kUnits, true>(launch, layers, states, items, mode, stream);
  } else {
    launch_tiled<T, kMixed, kUnits, false>(launch, layers, states, items, mode, stream);
  }
}

template <typename T, bool kMixed>
void launch_tiled(const SweepLaunch& launch, const DeviceLayer<T>* layers, const DeviceLayerState* states,
                  const SweepItem* items, SweepMode mode, cudaStream_t stream) {
  switch (launch.units) {
    case 1: return launch_tiled<T, kMixed, 1>(launch, layers, states, items, mode, stream);
    case 2: return launch_tiled<T, kMixed, 2>(launch, layers, states, items, mode, stream);
    case 4: return launch_tiled<T, kMixed, 4>(launch, layers, states, items, mode, stream);
    default: throw std::logic_error("spectral-norm: no tiled sweep is compiled for this many units per thread");
  }
}

// Raises the dynamic shared-memory limit of every tiled sweep compiled for T to what it asks for.
template <typename T, bool kMixed>
void prepare_tiled() {
#ifndef SN_CUDA_EMULATION
  auto raise = [](auto kernel, uint32_t units) {
    const size_t shared = tiled_ring_bytes(units) + tiled_scratch_doubles() * sizeof(double);
    SN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
  };
  raise(&sweep_tiled_kernel<T, kMixed, 1, true>, 1);
  raise(&sweep_tiled_kernel<T, kMixed, 1, false>, 1);
  raise(&sweep_tiled_kernel<T, kMixed, 2, true>, 2);
  raise(&sweep_tiled_kernel<T, kMixed, 2, false>, 2);
  raise(&sweep_tiled_kernel<T, kMixed, 4, true>, 4);
  raise(&sweep_tiled_kernel<T, kMixed, 4, false>, 4);
#endif
}

}  // namespace
}  // namespace sn::cuda
