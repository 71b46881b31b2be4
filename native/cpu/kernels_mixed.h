// The mixed-precision kernels for float32 weights: the same passes as the float64 kernels of kernels_impl.h, with
// float32 products on twice the lanes. Each lane sums at most kChunkProducts products in float32; that partial then
// joins a double accumulator (the precision policy: PowerOptions::precision, 'mixed'). Not a public header:
// kernels_impl.h includes it inside its anonymous namespace.
//
// Magnitudes. The caller scales x by a power of two so that max |x_i| ≤ 1/4, and these kernels scale c the same way
// (to_float_scaled): a lane's run of at most 16 such elements then has a 2-norm of at most 1, so by Cauchy–Schwarz no
// float32 partial exceeds the norm of the weights it multiplies, that is σ. Whatever W's scale, float32 overflows
// only where σ itself leaves float32's range, and the scaling itself is exact.

// At most this many float32 products per lane go into one float32 partial.
constexpr size_t kChunkProducts = 16;

// out[k] = (row k) · x for R rows at a + k·stride, k < R: float32 lanes, flushed into double every kChunkProducts
// vector steps; the last n % kFloatLanes elements in double.
template <int R>
__attribute__((always_inline)) inline void dot_rows_mixed(const float* a, size_t stride, const float* x, size_t n,
                                                          double* out) {
  vd acc[R];
  for (int k = 0; k < R; ++k) acc[k] = vd{};
  const size_t vector_end = n - n % kFloatLanes;
  size_t i = 0;
  while (i < vector_end) {
    const size_t left = vector_end - i;
    const size_t chunk_end = left > kChunkProducts * kFloatLanes ? i + kChunkProducts * kFloatLanes : vector_end;
    vf s[R];
    for (int k = 0; k < R; ++k) s[k] = vf{};
#pragma GCC unroll 2
    for (; i < chunk_end; i += kFloatLanes) {
      const vf xv = load_vf(x + i);
      for (int k = 0; k < R; ++k) s[k] += load_vf(a + k * stride + i) * xv;
    }
    for (int k = 0; k < R; ++k) {
      vd lo, hi;
      widen(s[k], lo, hi);
      acc[k] += lo + hi;
    }
  }
  for (int k = 0; k < R; ++k) {
    double tail = 0;
    for (size_t j = i; j < n; ++j) tail += double(a[k * stride + j]) * double(x[j]);
    out[k] = lane_sum(acc[k]) + tail;
  }
}

// One group of R ≤ 8 rows of a float32 partial: s = (kFirst ? 0 : acc) + Σ_k c[k]·(row k), each element's products
// added in row order; then, for the chunk's last group, y += scale·s in double, else acc = s. A chunk of one group
// never touches acc: the partial goes from registers straight into y.
template <int R, bool kFirst, bool kLast>
__attribute__((always_inline)) inline void axpy_group_f32(double* y, double scale, float* acc, const float* c,
                                                          const float* a, size_t stride, size_t m) {
  vf cv[R];
  for (int k = 0; k < R; ++k) cv[k] = splat_vf(c[k]);
  const vd sv = splat_vd(scale);
  const size_t vector_end = m - m % kFloatLanes;
  size_t i = 0;
#pragma GCC unroll 2
  for (; i < vector_end; i += kFloatLanes) {
    vf s = kFirst ? vf{} : load_vf(acc + i);
    for (int k = 0; k < R; ++k) s += cv[k] * load_vf(a + k * stride + i);
    if (kLast) {
      vd lo, hi;
      widen(s, lo, hi);
      store_vd(y + i, load_vd(y + i) + lo * sv);
      store_vd(y + i + kDoubleLanes, load_vd(y + i + kDoubleLanes) + hi * sv);
    } else {
      store_vf(acc + i, s);
    }
  }
  for (; i < m; ++i) {
    float s = kFirst ? 0.0f : acc[i];
    for (int k = 0; k < R; ++k) s += c[k] * a[k * stride + i];
    if (kLast) {
      y[i] += double(s) * scale;
    } else {
      acc[i] = s;
    }
  }
}

template <int R>
__attribute__((always_inline)) inline void axpy_group_f32(double* y, double scale, float* acc, const float* c,
                                                          const float* a, size_t stride, size_t m, bool first,
                                                          bool last) {
  if (first && last) {
    axpy_group_f32<R, true, true>(y, scale, acc, c, a, stride, m);
  } else if (first) {
    axpy_group_f32<R, true, false>(y, scale, acc, c, a, stride, m);
  } else if (last) {
    axpy_group_f32<R, false, true>(y, scale, acc, c, a, stride, m);
  } else {
    axpy_group_f32<R, false, false>(y, scale, acc, c, a, stride, m);
  }
}

// y[0..m) += scale · Σ_{k < count} c[k]·(row k)[0..m) for count ≤ kChunkProducts rows at a + k·stride: one float32
// partial per element, in groups of 8, 4 and 1 rows (so each c[k] broadcast serves a whole sweep along the rows and
// the partial is loaded and stored once per group, not per row), then into double. acc: m floats of scratch.
inline void axpy_chunk_mixed(double* y, double scale, const float* c, const float* a, size_t stride, size_t count,
                             size_t m, float* acc) {
  size_t k = 0;
  while (k < count) {
    const size_t left = count - k;
    const bool first = k == 0;
    if (left >= 8) {
      axpy_group_f32<8>(y, scale, acc, c + k, a + k * stride, stride, m, first, left == 8);
      k += 8;
    } else if (left >= 4) {
      axpy_group_f32<4>(y, scale, acc, c + k, a + k * stride, stride, m, first, left == 4);
      k += 4;
    } else {
      axpy_group_f32<1>(y, scale, acc, c + k, a + k * stride, stride, m, first, left == 1);
      k += 1;
    }
  }
}

// c32 = c·2^e, e chosen so that max |c32_i| is in [1/8, 1/4) (see the top of this file); returns 2^-e, which undoes
// it. Non-finite values pass through unscaled, so the caller's checks still see them.
inline double to_float_scaled(const double* c, size_t n, float* c32) {
  double largest = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = __builtin_fabs(c[i]);
    largest = a > largest ? a : largest;
  }
  double scale = 1, undo = 1;
  if (largest > 0 && largest <= __DBL_MAX__) {
    const int e = __builtin_ilogb(largest) + 3;
    scale = __builtin_ldexp(1.0, -e);
    undo = __builtin_ldexp(1.0, e);
  }
  for (size_t i = 0; i < n; ++i) c32[i] = static_cast<float>(c[i] * scale);
  return undo;
}

// d[r - r0] = M_r · x for r in [r0, r1). scratch: mixed_scratch_floats.
void matvec_rows_mixed(const float* w, const MatrixLayout& L, size_t r0, size_t r1, const float* x, double* d,
                       float* scratch) {
  const size_t n = r1 - r0;
  for (size_t r = 0; r < n; ++r) d[r] = 0.0;
  if (L.inner == 1) {
    // A row of M is a column of the stored [outer × rows] block: run along r, a chunk of stored rows at a time.
    const float* base = w + r0;
    for (size_t o = 0; o < L.outer; o += kChunkProducts) {
      const size_t count = L.outer - o < kChunkProducts ? L.outer - o : kChunkProducts;
      axpy_chunk_mixed(d, 1.0, x + o, base + o * L.rows, L.rows, count, n, scratch);
    }
    return;
  }
  const size_t m = L.inner;
  for (size_t o = 0; o < L.outer; ++o) {
    const float* block = w + (o * L.rows + r0) * m;
    const float* xo = x + o * m;
    size_t r = 0;
    for (; r + 8 <= n; r += 8) {
      double p[8];
      dot_rows_mixed<8>(block + r * m, m, xo, m, p);
      for (size_t k = 0; k < 8; ++k) d[r + k] += p[k];
    }
    for (; r + 4 <= n; r += 4) {
      double p[4];
      dot_rows_mixed<4>(block + r * m, m, xo, m, p);
      for (size_t k = 0; k < 4; ++k) d[r + k] += p[k];
    }
    for (; r < n; ++r) {
      double p;
      dot_rows_mixed<1>(block + r * m, m, xo, m, &p);
      d[r] += p;
    }
  }
}

// t += Σ_{r in [r0, r1)} c[r - r0] · M_r. scratch: mixed_scratch_floats.
void accumulate_rows_mixed(const float* w, const MatrixLayout& L, size_t r0, size_t r1, const double* c, double* t,
                           float* scratch) {
  const size_t n = r1 - r0;
  float* c32 = scratch;
  float* acc = scratch + n;
  const double undo = to_float_scaled(c, n, c32);
  if (L.inner == 1) {
    const float* base = w + r0;
    const size_t stride = L.rows;
    size_t o = 0;
    for (; o + 4 <= L.outer; o += 4) {
      double p[4];
      dot_rows_mixed<4>(base + o * stride, stride, c32, n, p);
      for (size_t k = 0; k < 4; ++k) t[o + k] += p[k] * undo;
    }
    for (; o < L.outer; ++o) {
      double p;
      dot_rows_mixed<1>(base + o * stride, stride, c32, n, &p);
      t[o] += p * undo;
    }
    return;
  }
  const size_t m = L.inner;
  for (size_t o = 0; o < L.outer; ++o) {
    const float* block = w + (o * L.rows + r0) * m;
    for (size_t r = 0; r < n; r += kChunkProducts) {
      const size_t count = n - r < kChunkProducts ? n - r : kChunkProducts;
      axpy_chunk_mixed(t + o * m, undo, c32 + r, block + r * m, m, count, m, acc);
    }
  }
}

// The fused sweep, tile by tile as in sweep_rows: d = M x, then t += Mᵀd while the tile is in cache. Tiles are a
// multiple of 8 rows up to 320 KiB (L2 is 512 KiB or more on the x86 CPUs with AVX2), so that M x runs 8 rows per pass
// over x and Mᵀd's float32 partials span 8 or 16 rows before they join t in double: with 4-row tiles (192 KiB of a
// 1024×9216 layer) the conversions to double cost as much as the products.
void sweep_rows_mixed(const float* w, const MatrixLayout& L, size_t r0, size_t r1, const float* x, double* d, double* t,
                      float* scratch) {
  const size_t tile = sweep_tile_rows<float>(L, 320 * 1024, 8);
  for (size_t rb = r0; rb < r1; rb += tile) {
    const size_t re = rb + tile < r1 ? rb + tile : r1;
    matvec_rows_mixed(w, L, rb, re, x, d + (rb - r0), scratch);
    accumulate_rows_mixed(w, L, rb, re, d + (rb - r0), t, scratch);
  }
}
