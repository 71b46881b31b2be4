// The kernel bodies, written once. Each kernels_<isa>.cpp includes this file inside its own namespace and is
// compiled with that instruction set's flags, so GCC/Clang lower the same vector code to AVX-512, AVX2+FMA or
// SSE2. Not a public header: include it only from those files.
//
// Everything here has internal linkage and uses no std:: templates: an inline template instantiated in the AVX-512
// file could otherwise be the copy the linker keeps for the baseline file, and fault on an older CPU.
#include <cstdint>
#include <cstring>

#include "kernels.h"
#include "kernels_vector.h"

#if !defined(__GNUC__)
#error "the CPU kernels use GCC/Clang vector extensions; build with GCC or Clang"
#endif

namespace {

using sn::MatrixLayout;

// The float64 kernels' scalar tails (the last n % 8 elements of a sum), written out so that their rounding is a
// property of this source rather than of the compiler's mood: these reproduce, bit for bit, what GCC 12 made of the
// earlier kernels' plain loops, whose results `precision: 'float64'` and float64 weights promise to keep. GCC
// vectorised some of those tails (a vector multiply, then the adds in order: each product rounded on its own) and
// fused the rest into scalar FMAs: with double weights, the first m & ~3 products were rounded with AVX-512, the
// first m & ~1 with AVX2 (m & ~3 in sum_squares), none with float weights; without FMA hardware every product is.
template <typename T>
constexpr size_t rounded_tail_products(size_t m, [[maybe_unused]] bool squares) {
#if defined(__FMA__)
  if (sizeof(T) == sizeof(float)) return 0;
#if defined(__AVX512F__)
  return m & ~size_t(3);
#else
  return squares ? m & ~size_t(3) : m & ~size_t(1);
#endif
#else
  return m;
#endif
}

// a·b rounded to double on its own: the empty asm keeps the compiler from fusing it into the add that follows.
__attribute__((always_inline)) inline double rounded_product(double a, double b) {
  double p = a * b;
#if defined(__SSE2__)
  __asm__("" : "+x"(p));
#else
  __asm__("" : "+r"(p));
#endif
  return p;
}

// t + Σ_{i < m} a[i]·x[i], in order, rounding products as rounded_tail_products says and fusing the rest.
template <typename T, typename X>
__attribute__((always_inline)) inline double tail_sum(double t, const T* a, const X* x, size_t m, bool squares) {
  const size_t rounded = rounded_tail_products<T>(m, squares);
  size_t i = 0;
  for (; i < rounded; ++i) t += rounded_product(double(a[i]), double(x[i]));
#if defined(__FMA__)
  for (; i < m; ++i) t = __builtin_fma(double(a[i]), double(x[i]), t);
#endif
  return t;
}

// Σ a[i]·x[i] with four independent accumulators, to hide the FMA latency.
template <typename T>
inline double dot(const T* a, const double* x, size_t n) {
  f64x8 acc0 = zero8(), acc1 = zero8(), acc2 = zero8(), acc3 = zero8();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    add_product(acc0, load8(a + i), load8(x + i));
    add_product(acc1, load8(a + i + 8), load8(x + i + 8));
    add_product(acc2, load8(a + i + 16), load8(x + i + 16));
    add_product(acc3, load8(a + i + 24), load8(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) add_product(acc0, load8(a + i), load8(x + i));
  return horizontal_sum((acc0 + acc1) + (acc2 + acc3)) + tail_sum(0.0, a + i, x + i, n - i, false);
}

// y += alpha · a.
template <typename T>
inline void axpy(double* y, double alpha, const T* a, size_t n) {
  const f64x8 s = splat8(alpha);
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
  f64x8 s0 = zero8(), s1 = zero8(), s2 = zero8(), s3 = zero8();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const f64x8 xv = load8(x + i);
    add_product(s0, load8(a0 + i), xv);
    add_product(s1, load8(a1 + i), xv);
    add_product(s2, load8(a2 + i), xv);
    add_product(s3, load8(a3 + i), xv);
  }
  out[0] = horizontal_sum(s0) + tail_sum(0.0, a0 + i, x + i, n - i, false);
  out[1] = horizontal_sum(s1) + tail_sum(0.0, a1 + i, x + i, n - i, false);
  out[2] = horizontal_sum(s2) + tail_sum(0.0, a2 + i, x + i, n - i, false);
  out[3] = horizontal_sum(s3) + tail_sum(0.0, a3 + i, x + i, n - i, false);
}

// y += c[0]·a0 + c[1]·a1 + c[2]·a2 + c[3]·a3: y is loaded and stored once per four rows.
template <typename T>
inline void axpy4(double* y, const double* c, const T* a0, const T* a1, const T* a2, const T* a3, size_t n) {
  const f64x8 c0 = splat8(c[0]), c1 = splat8(c[1]), c2 = splat8(c[2]), c3 = splat8(c[3]);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // The products in this order: GCC fuses the first and third into FMAs with the second and fourth (as it did
    // when this line was one expression), which the float64 results depend on bit for bit.
    const f64x8 y0 = load8(y + i);
    const f64x8 p0 = c0 * load8(a0 + i);
    const f64x8 p1 = c1 * load8(a1 + i);
    const f64x8 p2 = c2 * load8(a2 + i);
    const f64x8 p3 = c3 * load8(a3 + i);
    store8(y + i, y0 + ((p0 + p1) + (p2 + p3)));
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

// Rows per tile of the fused sweep: enough that the tile's second read comes from L2, a multiple of `multiple` (at
// least four) so the multi-row kernels do the work (wide rows still get four when those fit in twice the budget).
// When dim is the last axis a tile is a band of 2 KiB out of every stored row: narrower bands measured up to 4×
// slower here, the vector loops being too short, and wider ones no faster.
template <typename T>
size_t sweep_tile_rows(const MatrixLayout& L, size_t tile_bytes = 192 * 1024, size_t multiple = 4) {
  constexpr size_t kBandElements = 2048 / sizeof(T);
  const size_t row_bytes = L.cols() * sizeof(T);
  size_t rows = tile_bytes / row_bytes;
  if (rows >= multiple) {
    rows -= rows % multiple;
  } else if (rows >= 4) {
    rows -= rows % 4;
  } else if (4 * row_bytes <= 2 * tile_bytes) {
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

// Stores one native vector at a vector-aligned p without reading the line first (a non-temporal store): when W/σ goes
// to another buffer too large to stay in cache, that saves the read-for-ownership, a third of the division's traffic.
template <typename V>
__attribute__((always_inline)) inline void stream_vector(void* p, V x) {
  static_assert(sizeof(V) == SN_VECTOR_BYTES, "one native vector");
#if defined(__AVX512F__)
  _mm512_stream_si512(static_cast<__m512i*>(p), reinterpret_cast<__m512i>(x));
#elif defined(__AVX__)
  _mm256_stream_si256(static_cast<__m256i*>(p), reinterpret_cast<__m256i>(x));
#elif defined(__SSE2__)
  _mm_stream_si128(static_cast<__m128i*>(p), reinterpret_cast<__m128i>(x));
#else
  std::memcpy(p, &x, sizeof x);
#endif
}

// In native vectors: with AVX2, 64-byte vectors here had gone through the stack on their way to the streaming
// stores (27 instructions per 16 floats; now 4 per 8).
template <typename T>
void divide(const T* w, T* out, size_t n, T sigma, bool stream) {
  typedef T vec __attribute__((vector_size(SN_VECTOR_BYTES)));
  constexpr size_t kLanes = SN_VECTOR_BYTES / sizeof(T);
  vec s;
  for (size_t k = 0; k < kLanes; ++k) s[k] = sigma;
  size_t i = 0;
  if (stream) {
    // Scalar up to out's first vector boundary (typed arrays are only element-aligned), then whole vectors.
    while (i < n && (reinterpret_cast<uintptr_t>(out + i) % SN_VECTOR_BYTES) != 0) {
      out[i] = w[i] / sigma;
      ++i;
    }
    for (; i + kLanes <= n; i += kLanes) {
      vec a;
      std::memcpy(&a, w + i, sizeof a);
      stream_vector(out + i, a / s);
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
  f64x8 acc0 = zero8(), acc1 = zero8();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f64x8 a = load8(w + i), b = load8(w + i + 8);
    add_product(acc0, a, a);
    add_product(acc1, b, b);
  }
  for (; i + 8 <= n; i += 8) {
    const f64x8 a = load8(w + i);
    add_product(acc0, a, a);
  }
  return horizontal_sum(acc0 + acc1) + tail_sum(0.0, w + i, w + i, n - i, true);
}

// Reads w[0..n) with nothing but loads and adds, several independent sums deep, and returns a value that depends on
// every element: the loop of the read-bandwidth probe, which no arithmetic should slow down.
template <typename T>
double read_probe(const T* w, size_t n) {
  typedef T vec __attribute__((vector_size(SN_VECTOR_BYTES)));
  constexpr size_t kLanes = SN_VECTOR_BYTES / sizeof(T);
  vec s0 = {}, s1 = {}, s2 = {}, s3 = {};
  size_t i = 0;
  for (; i + 4 * kLanes <= n; i += 4 * kLanes) {
    vec a, b, c, e;
    std::memcpy(&a, w + i, sizeof a);
    std::memcpy(&b, w + i + kLanes, sizeof b);
    std::memcpy(&c, w + i + 2 * kLanes, sizeof c);
    std::memcpy(&e, w + i + 3 * kLanes, sizeof e);
    s0 += a;
    s1 += b;
    s2 += c;
    s3 += e;
  }
  const vec s = (s0 + s1) + (s2 + s3);
  double total = 0;
  for (size_t k = 0; k < kLanes; ++k) total += double(s[k]);
  for (; i < n; ++i) total += double(w[i]);
  return total;
}

#include "kernels_mixed.h"

// constexpr, so that the tables are constant-initialized: a table built by code at load time ran this file's
// instructions (AVX-512 stores, for a nine-pointer table) before any CPU check, and faulted on older CPUs.
constexpr sn::kernels::Table<float> make_table_f32() {
  return {&matvec_rows<float>, &accumulate_rows<float>, &sweep_rows<float>,  &matvec_rows_mixed, &accumulate_rows_mixed,
          &sweep_rows_mixed,   &divide<float>,          &sum_squares<float>, &read_probe<float>};
}

constexpr sn::kernels::Table<double> make_table_f64() {
  return {&matvec_rows<double>, &accumulate_rows<double>, &sweep_rows<double>, nullptr, nullptr, nullptr,
          &divide<double>,      &sum_squares<double>,     &read_probe<double>};
}

}  // namespace
