// The kernel bodies, written once. Each kernels_<isa>.cpp includes this file inside its own namespace and is
// compiled with that instruction set's flags, so GCC/Clang lower the same vector code to AVX-512, AVX2+FMA or
// SSE2. Not a public header: include it only from those files.
//
// Everything here has internal linkage and uses no std:: templates: an inline template instantiated in the AVX-512
// file could otherwise be the copy the linker keeps for the baseline file, and fault on an older CPU.
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "kernels.h"

#if !defined(__GNUC__)
#error "the CPU kernels use GCC/Clang vector extensions; build with GCC or Clang"
#endif

namespace {

using sn::MatrixLayout;

// 8 doubles: one AVX-512 register, two AVX2 registers or four SSE2 registers, as the target allows.
typedef double f64x8 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));

// Unaligned loads and stores: typed arrays carry no alignment promise.
__attribute__((always_inline)) inline f64x8 load8(const double* p) {
  f64x8 r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
__attribute__((always_inline)) inline f64x8 load8(const float* p) {
#if defined(__AVX512F__)
  // GCC lowers __builtin_convertvector to two 256-bit halves plus an insert here: one vcvtps2pd instead.
  return reinterpret_cast<f64x8>(_mm512_cvtps_pd(_mm256_loadu_ps(p)));
#elif defined(__AVX__)
  const __m256d halves[2] = {_mm256_cvtps_pd(_mm_loadu_ps(p)), _mm256_cvtps_pd(_mm_loadu_ps(p + 4))};
  f64x8 r;
  std::memcpy(&r, halves, sizeof r);
  return r;
#else
  f32x8 r;
  std::memcpy(&r, p, sizeof r);
  return __builtin_convertvector(r, f64x8);
#endif
}
__attribute__((always_inline)) inline void store8(double* p, f64x8 x) { std::memcpy(p, &x, sizeof x); }

__attribute__((always_inline)) inline double horizontal_sum(f64x8 a) {
  // A fixed order, so the result does not depend on how the compiler splits the vector.
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// Σ a[i]·x[i] with four independent accumulators, to hide the FMA latency.
template <typename T>
inline double dot(const T* a, const double* x, size_t n) {
  f64x8 acc0 = {}, acc1 = {}, acc2 = {}, acc3 = {};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 += load8(a + i) * load8(x + i);
    acc1 += load8(a + i + 8) * load8(x + i + 8);
    acc2 += load8(a + i + 16) * load8(x + i + 16);
    acc3 += load8(a + i + 24) * load8(x + i + 24);
  }
  for (; i + 8 <= n; i += 8) acc0 += load8(a + i) * load8(x + i);
  double tail = 0;
  for (; i < n; ++i) tail += double(a[i]) * x[i];
  return horizontal_sum((acc0 + acc1) + (acc2 + acc3)) + tail;
}

// y += alpha · a.
template <typename T>
inline void axpy(double* y, double alpha, const T* a, size_t n) {
  const f64x8 s = {alpha, alpha, alpha, alpha, alpha, alpha, alpha, alpha};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    store8(y + i, load8(y + i) + s * load8(a + i));
    store8(y + i + 8, load8(y + i + 8) + s * load8(a + i + 8));
  }
  for (; i + 8 <= n; i += 8) store8(y + i, load8(y + i) + s * load8(a + i));
  for (; i < n; ++i) y[i] += alpha * double(a[i]);
}

// out[k] = a_k · x for four rows at once: each x element is loaded once per four rows, which is what keeps a wide
// layer's x (a double per column) from costing more cache traffic than the row itself.
template <typename T>
inline void dot4(const T* a0, const T* a1, const T* a2, const T* a3, const double* x, size_t n, double* out) {
  f64x8 s0 = {}, s1 = {}, s2 = {}, s3 = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const f64x8 xv = load8(x + i);
    s0 += load8(a0 + i) * xv;
    s1 += load8(a1 + i) * xv;
    s2 += load8(a2 + i) * xv;
    s3 += load8(a3 + i) * xv;
  }
  double t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  for (; i < n; ++i) {
    t0 += double(a0[i]) * x[i];
    t1 += double(a1[i]) * x[i];
    t2 += double(a2[i]) * x[i];
    t3 += double(a3[i]) * x[i];
  }
  out[0] = horizontal_sum(s0) + t0;
  out[1] = horizontal_sum(s1) + t1;
  out[2] = horizontal_sum(s2) + t2;
  out[3] = horizontal_sum(s3) + t3;
}

// y += c[0]·a0 + c[1]·a1 + c[2]·a2 + c[3]·a3: y is loaded and stored once per four rows.
template <typename T>
inline void axpy4(double* y, const double* c, const T* a0, const T* a1, const T* a2, const T* a3, size_t n) {
  const f64x8 c0 = {c[0], c[0], c[0], c[0], c[0], c[0], c[0], c[0]};
  const f64x8 c1 = {c[1], c[1], c[1], c[1], c[1], c[1], c[1], c[1]};
  const f64x8 c2 = {c[2], c[2], c[2], c[2], c[2], c[2], c[2], c[2]};
  const f64x8 c3 = {c[3], c[3], c[3], c[3], c[3], c[3], c[3], c[3]};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    store8(y + i, load8(y + i) + ((c0 * load8(a0 + i) + c1 * load8(a1 + i)) + (c2 * load8(a2 + i) + c3 * load8(a3 + i))));
  }
  for (; i < n; ++i) {
    y[i] += (c[0] * double(a0[i]) + c[1] * double(a1[i])) + (c[2] * double(a2[i]) + c[3] * double(a3[i]));
  }
}

template <typename T>
void matvec_rows(const T* w, const MatrixLayout& L, size_t r0, size_t r1, const double* x, double* d) {
  const size_t n = r1 - r0;
  for (size_t r = 0; r < n; ++r) d[r] = 0.0;
  if (L.inner == 1) {
    // dim is the last axis: a row of M is a column of the stored [outer × rows] block, so run along r instead,
    // four stored rows at a time.
    const T* base = w + r0;
    const size_t stride = L.rows;
    size_t o = 0;
    for (; o + 4 <= L.outer; o += 4) {
      const T* a = base + o * stride;
      axpy4(d, x + o, a, a + stride, a + 2 * stride, a + 3 * stride, n);
    }
    for (; o < L.outer; ++o) axpy(d, x[o], base + o * stride, n);
    return;
  }
  const size_t m = L.inner;
  for (size_t o = 0; o < L.outer; ++o) {
    const T* block = w + (o * L.rows + r0) * m;
    const double* xo = x + o * m;
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
      double p[4];
      const T* a = block + r * m;
      dot4(a, a + m, a + 2 * m, a + 3 * m, xo, m, p);
      for (size_t k = 0; k < 4; ++k) d[r + k] += p[k];
    }
    for (; r < n; ++r) d[r] += dot(block + r * m, xo, m);
  }
}

template <typename T>
void accumulate_rows(const T* w, const MatrixLayout& L, size_t r0, size_t r1, const double* c, double* t) {
  const size_t n = r1 - r0;
  if (L.inner == 1) {
    const T* base = w + r0;
    const size_t stride = L.rows;
    size_t o = 0;
    for (; o + 4 <= L.outer; o += 4) {
      double p[4];
      const T* a = base + o * stride;
      dot4(a, a + stride, a + 2 * stride, a + 3 * stride, c, n, p);
      for (size_t k = 0; k < 4; ++k) t[o + k] += p[k];
    }
    for (; o < L.outer; ++o) t[o] += dot(base + o * stride, c, n);
    return;
  }
  const size_t m = L.inner;
  for (size_t o = 0; o < L.outer; ++o) {
    const T* block = w + (o * L.rows + r0) * m;
    double* to = t + o * m;
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
      const T* a = block + r * m;
      axpy4(to, c + r, a, a + m, a + 2 * m, a + 3 * m, m);
    }
    for (; r < n; ++r) axpy(to, c[r], block + r * m, m);
  }
}

// Rows per tile of the fused sweep: enough that the tile's second read comes from L2, a multiple of four so the
// four-row kernels do the work (wide rows still get four when those fit in twice the budget). When dim is the last
// axis a tile is a band of 2 KiB out of every stored row: narrower bands measured up to 4× slower here, the vector
// loops being too short, and wider ones no faster.
template <typename T>
size_t sweep_tile_rows(const MatrixLayout& L) {
  constexpr size_t kTileBytes = 192 * 1024;
  constexpr size_t kBandElements = 2048 / sizeof(T);
  const size_t row_bytes = L.cols() * sizeof(T);
  size_t rows = kTileBytes / row_bytes;
  if (rows >= 4) {
    rows -= rows % 4;
  } else if (4 * row_bytes <= 2 * kTileBytes) {
    rows = 4;
  } else if (rows == 0) {
    rows = 1;
  }
  const size_t min_rows = L.inner >= kBandElements ? 1 : (kBandElements + L.inner - 1) / L.inner;
  return rows > min_rows ? rows : min_rows;
}

template <typename T>
void sweep_rows(const T* w, const MatrixLayout& L, size_t r0, size_t r1, const double* x, double* d, double* t) {
  const size_t tile = sweep_tile_rows<T>(L);
  for (size_t rb = r0; rb < r1; rb += tile) {
    const size_t re = rb + tile < r1 ? rb + tile : r1;
    matvec_rows(w, L, rb, re, x, d + (rb - r0));
    accumulate_rows(w, L, rb, re, d + (rb - r0), t);
  }
}

// Stores 64 bytes at a 64-byte aligned p without reading the line first (a non-temporal store): when W/σ goes to
// another buffer too large to stay in cache, that saves the read-for-ownership, a third of the division's traffic.
__attribute__((always_inline)) inline void stream64(void* p, const void* bytes) {
#if defined(__AVX512F__)
  __m512i a;
  std::memcpy(&a, bytes, 64);
  _mm512_stream_si512(static_cast<__m512i*>(p), a);
#elif defined(__AVX__)
  __m256i a[2];
  std::memcpy(a, bytes, 64);
  _mm256_stream_si256(static_cast<__m256i*>(p), a[0]);
  _mm256_stream_si256(static_cast<__m256i*>(p) + 1, a[1]);
#elif defined(__SSE2__)
  __m128i a[4];
  std::memcpy(a, bytes, 64);
  for (int k = 0; k < 4; ++k) _mm_stream_si128(static_cast<__m128i*>(p) + k, a[k]);
#else
  std::memcpy(p, bytes, 64);
#endif
}

template <typename T>
void divide(const T* w, T* out, size_t n, T sigma, bool stream) {
  typedef T vec __attribute__((vector_size(64)));
  constexpr size_t kLanes = 64 / sizeof(T);
  vec s;
  for (size_t k = 0; k < kLanes; ++k) s[k] = sigma;
  size_t i = 0;
  if (stream) {
    // Scalar up to out's first cache-line boundary (typed arrays are only element-aligned), then whole lines.
    while (i < n && (reinterpret_cast<uintptr_t>(out + i) & 63) != 0) {
      out[i] = w[i] / sigma;
      ++i;
    }
    for (; i + kLanes <= n; i += kLanes) {
      vec a;
      std::memcpy(&a, w + i, sizeof a);
      a /= s;
      stream64(out + i, &a);
    }
#if defined(__SSE2__)
    _mm_sfence();  // non-temporal stores are weakly ordered: make them visible before the pool reports done
#endif
  }
  for (; i + kLanes <= n; i += kLanes) {
    vec a;
    std::memcpy(&a, w + i, sizeof a);
    a /= s;
    std::memcpy(out + i, &a, sizeof a);
  }
  for (; i < n; ++i) out[i] = w[i] / sigma;
}

template <typename T>
double sum_squares(const T* w, size_t n) {
  f64x8 acc0 = {}, acc1 = {};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f64x8 a = load8(w + i), b = load8(w + i + 8);
    acc0 += a * a;
    acc1 += b * b;
  }
  for (; i + 8 <= n; i += 8) {
    const f64x8 a = load8(w + i);
    acc0 += a * a;
  }
  double tail = 0;
  for (; i < n; ++i) tail += double(w[i]) * double(w[i]);
  return horizontal_sum(acc0 + acc1) + tail;
}

template <typename T>
sn::kernels::Table<T> make_table() {
  return {&matvec_rows<T>, &accumulate_rows<T>, &sweep_rows<T>, &divide<T>, &sum_squares<T>};
}

}  // namespace
