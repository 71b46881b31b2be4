// The convolution and spectrum kernel bodies, written once. Each conv_kernels_<isa>.cpp includes this file inside its
// own namespace and is compiled with that instruction set's flags (as kernels_impl.h is). Internal linkage only, and
// no std:: templates, for the same reason as there: the linker must not pick an AVX-512 copy for the baseline.
#include <cstring>

#include "conv_kernels.h"

#if !defined(__GNUC__)
#error "the CPU kernels use GCC/Clang vector extensions; build with GCC or Clang"
#endif

namespace {

typedef double v8 __attribute__((vector_size(64)));

__attribute__((always_inline)) inline v8 load(const double* p) {
  v8 r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
__attribute__((always_inline)) inline void store(double* p, v8 x) { std::memcpy(p, &x, sizeof x); }
__attribute__((always_inline)) inline v8 broadcast(double x) { return v8{x, x, x, x, x, x, x, x}; }
__attribute__((always_inline)) inline double sum(v8 a) {
  return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

// Register tiles of the panel product: R rows of A × V vectors of 8 columns, R·V accumulators. AVX-512 has 32
// vector registers (a v8 is one), AVX2 16 (a v8 is two), SSE2 16 (a v8 is four): each keeps its tile and the B row
// it broadcasts against in registers.
#if defined(__AVX512F__)
constexpr int kTileRows = 8, kTileVectors = 2;
#elif defined(__AVX2__)
constexpr int kTileRows = 6, kTileVectors = 1;
#else
constexpr int kTileRows = 2, kTileVectors = 1;
#endif
static_assert(sn::conv_kernels::kPanel % (8 * kTileVectors) == 0, "a panel is a whole number of tile columns");

// Rows [i, i + R) × columns [col, col + 8V) of one panel: each B vector loaded once per R rows, each A entry
// broadcast once per V vectors.
template <int R, int V, typename T>
inline void product_tile(const sn::conv_kernels::PanelProduct<T>& p, const double* b, double* c, size_t i, size_t col) {
  constexpr size_t kPanel = sn::conv_kernels::kPanel;
  v8 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = v8{};
  const T* row[R];
  for (int r = 0; r < R; ++r) row[r] = p.a + static_cast<std::ptrdiff_t>(i + r) * p.a_row;
  const double* bl = b + col;
  for (size_t l = 0; l < p.depth; ++l, bl += kPanel) {
    v8 bv[V];
    for (int v = 0; v < V; ++v) bv[v] = load(bl + 8 * v);
    const std::ptrdiff_t at = static_cast<std::ptrdiff_t>(l) * p.a_col;
    for (int r = 0; r < R; ++r) {
      const v8 x = broadcast(static_cast<double>(row[r][at]));
      for (int v = 0; v < V; ++v) acc[r][v] += x * bv[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) store(c + (i + r) * kPanel + col + 8 * v, acc[r][v]);
}

// The rows of one panel: full tiles, then halving tiles for the remainder.
template <int R, typename T>
inline void product_rows(const sn::conv_kernels::PanelProduct<T>& p, const double* b, double* c, size_t& i,
                         size_t col) {
  for (; i + R <= p.row_end; i += R) product_tile<R, kTileVectors>(p, b, c, i, col);
  if constexpr (R > 1) product_rows<R / 2>(p, b, c, i, col);
}

template <typename T>
void panel_product(const sn::conv_kernels::PanelProduct<T>& p) {
  constexpr size_t kPanel = sn::conv_kernels::kPanel;
  for (size_t q = 0; q < p.panels; ++q) {
    const double* b = p.b + q * p.depth * kPanel;
    double* c = p.c + q * p.m * kPanel;
    for (size_t col = 0; col < kPanel; col += 8 * kTileVectors) {
      size_t i = p.row_begin;
      product_rows<kTileRows>(p, b, c, i, col);
    }
  }
}

// Two rows of A against two rows: four entries of A·Aᴴ at once, each row vector loaded once per two entries.
void gram_rows(const double* ar, const double* ai, size_t n, size_t k, size_t i0, size_t i1, double* pr, double* pi) {
  (void)n;
  auto entry = [&](size_t i, size_t j, double re, double im) {
    pr[i * n + j] = re;
    if (pi) pi[i * n + j] = im;
  };
  for (size_t i = i0; i < i1; i += 2) {
    const bool pair = i + 1 < i1;
    const double* a0r = ar + i * k;
    const double* a1r = pair ? a0r + k : a0r;
    const double* a0i = ai ? ai + i * k : nullptr;
    const double* a1i = ai ? (pair ? a0i + k : a0i) : nullptr;
    const size_t last = pair ? i + 1 : i;
    for (size_t j = 0; j <= last; j += 2) {
      const bool jpair = j + 1 <= last;
      const double* b0r = ar + j * k;
      const double* b1r = jpair ? b0r + k : b0r;
      v8 r00 = {}, r01 = {}, r10 = {}, r11 = {};
      v8 m00 = {}, m01 = {}, m10 = {}, m11 = {};
      size_t l = 0;
      if (ai) {
        const double* b0i = ai + j * k;
        const double* b1i = jpair ? b0i + k : b0i;
        for (; l + 8 <= k; l += 8) {
          const v8 x0r = load(a0r + l), x0i = load(a0i + l), x1r = load(a1r + l), x1i = load(a1i + l);
          const v8 y0r = load(b0r + l), y0i = load(b0i + l), y1r = load(b1r + l), y1i = load(b1i + l);
          r00 += x0r * y0r + x0i * y0i;
          m00 += x0i * y0r - x0r * y0i;
          r01 += x0r * y1r + x0i * y1i;
          m01 += x0i * y1r - x0r * y1i;
          r10 += x1r * y0r + x1i * y0i;
          m10 += x1i * y0r - x1r * y0i;
          r11 += x1r * y1r + x1i * y1i;
          m11 += x1i * y1r - x1r * y1i;
        }
        double s[8] = {sum(r00), sum(m00), sum(r01), sum(m01), sum(r10), sum(m10), sum(r11), sum(m11)};
        for (; l < k; ++l) {
          s[0] += a0r[l] * b0r[l] + a0i[l] * b0i[l];
          s[1] += a0i[l] * b0r[l] - a0r[l] * b0i[l];
          s[2] += a0r[l] * b1r[l] + a0i[l] * b1i[l];
          s[3] += a0i[l] * b1r[l] - a0r[l] * b1i[l];
          s[4] += a1r[l] * b0r[l] + a1i[l] * b0i[l];
          s[5] += a1i[l] * b0r[l] - a1r[l] * b0i[l];
          s[6] += a1r[l] * b1r[l] + a1i[l] * b1i[l];
          s[7] += a1i[l] * b1r[l] - a1r[l] * b1i[l];
        }
        if (j <= i) entry(i, j, s[0], j == i ? 0.0 : s[1]);
        if (jpair && j + 1 <= i) entry(i, j + 1, s[2], j + 1 == i ? 0.0 : s[3]);
        if (pair) {
          entry(i + 1, j, s[4], j == i + 1 ? 0.0 : s[5]);
          if (jpair) entry(i + 1, j + 1, s[6], j + 1 == i + 1 ? 0.0 : s[7]);
        }
      } else {
        for (; l + 8 <= k; l += 8) {
          const v8 x0 = load(a0r + l), x1 = load(a1r + l), y0 = load(b0r + l), y1 = load(b1r + l);
          r00 += x0 * y0;
          r01 += x0 * y1;
          r10 += x1 * y0;
          r11 += x1 * y1;
        }
        double s[4] = {sum(r00), sum(r01), sum(r10), sum(r11)};
        for (; l < k; ++l) {
          s[0] += a0r[l] * b0r[l];
          s[1] += a0r[l] * b1r[l];
          s[2] += a1r[l] * b0r[l];
          s[3] += a1r[l] * b1r[l];
        }
        if (j <= i) entry(i, j, s[0], 0.0);
        if (jpair && j + 1 <= i) entry(i, j + 1, s[1], 0.0);
        if (pair) {
          entry(i + 1, j, s[2], 0.0);
          if (jpair) entry(i + 1, j + 1, s[3], 0.0);
        }
      }
    }
  }
}

void dot(const double* ar, const double* ai, const double* br, const double* bi, size_t k, double* re, double* im) {
  v8 r0 = {}, r1 = {}, m0 = {}, m1 = {};
  size_t l = 0;
  if (ai) {
    for (; l + 16 <= k; l += 16) {
      r0 += load(ar + l) * load(br + l) + load(ai + l) * load(bi + l);
      m0 += load(ai + l) * load(br + l) - load(ar + l) * load(bi + l);
      r1 += load(ar + l + 8) * load(br + l + 8) + load(ai + l + 8) * load(bi + l + 8);
      m1 += load(ai + l + 8) * load(br + l + 8) - load(ar + l + 8) * load(bi + l + 8);
    }
    double sr = sum(r0 + r1), si = sum(m0 + m1);
    for (; l < k; ++l) {
      sr += ar[l] * br[l] + ai[l] * bi[l];
      si += ai[l] * br[l] - ar[l] * bi[l];
    }
    *re = sr;
    *im = si;
    return;
  }
  for (; l + 16 <= k; l += 16) {
    r0 += load(ar + l) * load(br + l);
    r1 += load(ar + l + 8) * load(br + l + 8);
  }
  double sr = sum(r0 + r1);
  for (; l < k; ++l) sr += ar[l] * br[l];
  *re = sr;
  *im = 0;
}

}  // namespace

inline sn::conv_kernels::Table make_conv_table() {
  return {panel_product<float>, panel_product<double>, static_cast<size_t>(kTileRows), gram_rows, dot};
}
