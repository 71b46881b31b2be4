#include "power_iteration.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>

#include "conv_operator.h"
#include "kernels.h"
#include "scratch_allocator.h"
#include "thread_pool.h"

namespace sn {
namespace {

// A layer gets one more thread per this many elements of W, up to PowerOptions::threads. It depends only on the
// layer's size, so a layer gives the same bits alone or in any batch, for a given thread count.
constexpr size_t kElementsPerThread = size_t(1) << 17;

unsigned layer_threads(size_t elements, unsigned threads) {
  const size_t wanted = std::max<size_t>(1, elements / kElementsPerThread);
  return static_cast<unsigned>(std::min<size_t>(wanted, std::max(1u, threads)));
}

// ‖x‖₂ by scaling with max |x_i| first: no overflow or underflow in the squares. NaN when x holds NaN or ±Inf.
template <typename E>
double scaled_norm2(const E* x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(x[i]));
    if (!(a <= std::numeric_limits<double>::max())) return std::numeric_limits<double>::quiet_NaN();
    m = std::max(m, a);
  }
  if (m == 0) return 0;
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    const double y = static_cast<double>(x[i]) / m;
    s += y * y;
  }
  return m * std::sqrt(s);
}

// sqrt(sum_squares) when that sum is safely in range, else the scaled computation. NaN for NaN or ±Inf in x.
template <typename E>
double norm2_from(double sum_squares, const E* x, size_t n) {
  constexpr double kSafeMin = 0x1p-900;
  if (std::isfinite(sum_squares) && sum_squares >= kSafeMin) return std::sqrt(sum_squares);
  return scaled_norm2(x, n);  // NaN or ±Inf in x, or squares that overflowed or underflowed (to 0 as well)
}

// ‖x‖₂ of a small double vector.
double norm2(const double* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += x[i] * x[i];
  return norm2_from(s, x, n);
}

// PyTorch's max(‖x‖, eps), except that a zero vector with eps = 0 divides by 1 rather than giving 0/0.
double clamp_norm(double norm, double eps) {
  const double den = std::max(norm, eps);
  return den > 0 ? den : 1.0;
}

// Whether a layer's products run in mixed precision: float32 weights, unless the job asks for float64.
template <typename T>
bool mixed_precision(const PowerOptions& options) {
  return std::is_same_v<T, float> && options.precision == Precision::kMixed;
}

// Whether this layer's products run mixed: a convolution operator (conv_operator.h) always sums in float64.
template <typename T>
bool layer_mixed(const LayerBuffers<T>& layer, const PowerOptions& options) {
  return mixed_precision<T>(options) && !layer.is_conv;
}

// Rows of the largest row range a layer's tasks get (LayerRun::row_begin splits [0, rows) into `threads` of them).
size_t rows_per_task(size_t rows, size_t threads) { return (rows + threads - 1) / threads; }

// The mixed kernels' scratch for each task of a layer, in floats.
size_t kernel_scratch_floats(const MatrixLayout& L, size_t threads) {
  return kernels::mixed_scratch_floats(L, rows_per_task(L.rows, threads));
}

// x32 = v·2^e with max |x32_i| in [1/8, 1/4), the mixed kernels' contract for x (kernels.h); returns 2^-e, the factor
// that brings their d and t back to v's scale. Power-of-two scaling: exact.
double scaled_float_copy(const float* v, size_t n, float* x32) {
  float largest = 0;
  for (size_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(v[i]));
  const int e = largest > 0 ? -(std::ilogb(largest) + 3) : 0;
  const double scale = std::ldexp(1.0, e);  // a power of two: the product rounds only where it is subnormal, as ldexp
  for (size_t i = 0; i < n; ++i) x32[i] = static_cast<float>(v[i] * scale);
  return std::ldexp(1.0, -e);
}

// Per-layer scratch inside the job's arena.
template <typename T>
struct Scratch {
  double* x = nullptr;      // cols: the right vector as double (float64 precision)
  double* d = nullptr;      // rows: M x
  double* t = nullptr;      // cols: Mᵀ d
  T* u_new = nullptr;       // rows
  T* v_new = nullptr;       // cols
  float* x32 = nullptr;     // cols: the right vector as the mixed kernels take it (mixed precision)
  float* kernel = nullptr;  // the mixed kernels' scratch, kernel_scratch_floats per task
};

template <typename T>
class LayerRun {
 public:
  LayerRun(const LayerBuffers<T>& layer, const PowerOptions& options, unsigned threads, Scratch<T> scratch,
           double* partials)
      : b_(layer),
        opt_(options),
        k_(kernels::table<T>()),
        L_(layer.layout),
        threads_(std::min<size_t>(threads, std::max<size_t>(1, L_.rows))),
        mixed_(layer_mixed(layer, options)),
        s_(scratch),
        partials_(partials) {}

  LayerResult run() {
    if (b_.is_conv) conv_.emplace(b_.weight, b_.conv);
    LayerResult r;
    double sigma = 0;
    bool finite;
    if (b_.vector_norm) {
      sigma = vector_norm();
      finite = std::isfinite(sigma);
      r.converged = true;
    } else if (opt_.tolerance >= 0) {
      finite = converge(sigma, r);
    } else if (opt_.iterations == 0) {
      finite = eval(sigma);
    } else if (opt_.legacy) {
      finite = fixed_legacy(sigma);
      r.iterations_run = opt_.iterations;
    } else {
      finite = fixed_default(sigma);
      r.iterations_run = opt_.iterations;
    }
    const T rounded = static_cast<T>(sigma);
    r.sigma = static_cast<double>(rounded);
    if (!finite || !std::isfinite(rounded)) {
      r.status = LayerStatus::kNonFinite;
    } else if (std::fabs(r.sigma) <= opt_.eps) {
      r.status = LayerStatus::kBelowEps;
    }
    return r;
  }

 private:
  // σ = ‖W‖ for a 1-D weight: one SIMD pass, rescaled only in the rare case the squares leave double's range.
  double vector_norm() {
    const size_t n = L_.size();
    return norm2_from(k_.sum_squares(b_.weight, n), b_.weight, n);
  }

  // Eval mode: σ = u·(M v) with u and v as they are. One pass.
  bool eval(double& sigma) {
    set_x(b_.v);
    matvec();
    const double nd = norm2(s_.d, L_.rows);
    double dot = 0;
    for (size_t r = 0; r < L_.rows; ++r) dot += static_cast<double>(b_.u[r]) * s_.d[r];
    sigma = dot;
    return std::isfinite(nd) && std::isfinite(dot);
  }

  // u ← normalize(W v), v ← normalize(Wᵀ u), σ = ‖Wᵀu‖: one fused sweep over W per iteration.
  bool fixed_default(double& sigma) {
    set_x(b_.v);
    double nt = 0, den_v = 1;
    for (int32_t j = 0; j < opt_.iterations; ++j) {
      sweep();
      double den_u;
      if (!update_u(norm2(s_.d, L_.rows), den_u)) return false;
      if (!update_v(den_u, nt, den_v)) return false;
    }
    sigma = nt * (nt / den_v);  // u·(W v) = (Wᵀu)·v
    return true;
  }

  // v ← normalize(Wᵀ u), u ← normalize(W v), σ = ‖W v‖: a first pass for Wᵀu, then one per iteration.
  bool fixed_legacy(double& sigma) {
    for (size_t r = 0; r < L_.rows; ++r) s_.d[r] = static_cast<double>(b_.u[r]);
    rmatvec_of_d();
    double nt, den_v;
    if (!update_v(1.0, nt, den_v)) return false;
    for (int32_t j = 0; j < opt_.iterations; ++j) {
      const bool last = j + 1 == opt_.iterations;
      if (last) {
        matvec();
      } else {
        sweep();
      }
      const double nd = norm2(s_.d, L_.rows);
      double den_u;
      if (!update_u(nd, den_u)) return false;
      sigma = nd * (nd / den_u);
      if (!last && !update_v(den_u, nt, den_v)) return false;
    }
    return true;
  }

  // One-shot estimate: exact normalisation, so σ(cW) = |c|σ(W) at any scale, until σ settles. x is kept at
  // v/σ rather than v, so d = W x stays near 1 and t = Wᵀd near σ: neither over- nor underflows, whatever W's scale.
  bool converge(double& sigma, LayerResult& r) {
    set_x(b_.v);
    double previous = 0;
    sigma = 0;
    for (int32_t j = 1; j <= opt_.iterations; ++j) {
      sweep();
      double nd = norm2(s_.d, L_.rows);
      if (!std::isfinite(nd)) return false;
      r.iterations_run = j;
      if (nd == 0) {  // a zero matrix (or a start vector in its null space)
        sigma = 0;
        r.converged = true;
        return true;
      }
      if (j == 1) previous = nd;  // ‖W v₀‖, the estimate before the first full iteration
      double nt = norm2(s_.t, L_.cols());
      if (j == 1 && !mixed_ && !(std::isfinite(nt) && nt > 0x1p-900)) {
        // The unit start vector gave t ~ σ², out of range for float64 weights beyond 1e±150: rescale and redo.
        for (size_t c = 0; c < L_.cols(); ++c) s_.x[c] /= nd;
        sweep();
        nd = norm2(s_.d, L_.rows);
        nt = norm2(s_.t, L_.cols());
      }
      if (!std::isfinite(nt) || !std::isfinite(nd)) return false;
      if (nt == 0) {
        sigma = 0;
        r.converged = true;
        return true;
      }
      sigma = nt / nd;  // ‖Wᵀu‖ with u = d/‖d‖
      for (size_t i = 0; i < L_.rows; ++i) s_.u_new[i] = static_cast<T>(s_.d[i] / nd);
      for (size_t c = 0; c < L_.cols(); ++c) {
        const double v = s_.t[c] / nt;
        s_.v_new[c] = static_cast<T>(v);
        if (!mixed_) s_.x[c] = v / sigma;  // kept in double between iterations: the estimate, not PyTorch's rounding
      }
      if (mixed_) set_x(s_.v_new);  // float32 products: v in float32 is all they can use
      const bool settled = std::fabs(sigma - previous) <= opt_.tolerance * sigma;
      previous = sigma;
      if (settled) {
        r.converged = true;
        return true;
      }
    }
    return true;
  }

  // x = v, as the kernels of this layer's precision take it.
  void set_x(const T* v) {
    if (mixed_) {
      if constexpr (std::is_same_v<T, float>) x_undo_ = scaled_float_copy(v, L_.cols(), s_.x32);
      return;
    }
    for (size_t c = 0; c < L_.cols(); ++c) s_.x[c] = static_cast<double>(v[c]);
  }

  // u_new = d / den with den = max(‖d‖, eps), where nd = ‖d‖.
  bool update_u(double nd, double& den) {
    if (!std::isfinite(nd)) return false;
    den = clamp_norm(nd, opt_.eps);
    for (size_t r = 0; r < L_.rows; ++r) s_.u_new[r] = static_cast<T>(s_.d[r] / den);
    return true;
  }

  // t ← t / den_u, which makes it Wᵀu when t held Wᵀd; then v_new = t / max(‖t‖, eps) and x = v_new (rounded, as
  // PyTorch stores v).
  bool update_v(double den_u, double& nt, double& den) {
    for (size_t c = 0; c < L_.cols(); ++c) s_.t[c] /= den_u;
    nt = norm2(s_.t, L_.cols());
    if (!std::isfinite(nt)) return false;
    den = clamp_norm(nt, opt_.eps);
    for (size_t c = 0; c < L_.cols(); ++c) s_.v_new[c] = static_cast<T>(s_.t[c] / den);
    set_x(s_.v_new);
    return true;
  }

  size_t row_begin(size_t task) const { return L_.rows * task / threads_; }

  float* kernel_scratch(size_t task) const { return s_.kernel + task * kernel_scratch_floats(L_, threads_); }

  // d[r0, r1) from the mixed kernels, at v's scale.
  void unscale_d(size_t r0, size_t r1) const {
    for (size_t r = r0; r < r1; ++r) s_.d[r] *= x_undo_;
  }

  // d = M x.
  void matvec() {
    if (conv_) {
      conv_->forward(s_.x, s_.d, static_cast<unsigned>(threads_));
      return;
    }
    parallel_for(threads_, threads_, [&](size_t i) {
      const size_t r0 = row_begin(i), r1 = row_begin(i + 1);
      if (mixed_) {
        k_.matvec_rows_mixed(b_.weight, L_, r0, r1, s_.x32, s_.d + r0, kernel_scratch(i));
        unscale_d(r0, r1);
      } else {
        k_.matvec_rows(b_.weight, L_, r0, r1, s_.x, s_.d + r0);
      }
    });
  }

  // d = M x and t = Mᵀd, in one pass (a convolution, then its transpose).
  void sweep() {
    if (conv_) {
      matvec();
      rmatvec_of_d();
      return;
    }
    accumulate_t([&](size_t i, size_t r0, size_t r1, double* t) {
      if (mixed_) {
        k_.sweep_rows_mixed(b_.weight, L_, r0, r1, s_.x32, s_.d + r0, t, kernel_scratch(i));
        unscale_d(r0, r1);
      } else {
        k_.sweep_rows(b_.weight, L_, r0, r1, s_.x, s_.d + r0, t);
      }
    });
    if (mixed_) {
      for (size_t c = 0; c < L_.cols(); ++c) s_.t[c] *= x_undo_;
    }
  }

  // t = Mᵀd.
  void rmatvec_of_d() {
    if (conv_) {
      conv_->transpose(s_.d, s_.t, static_cast<unsigned>(threads_));
      return;
    }
    accumulate_t([&](size_t i, size_t r0, size_t r1, double* t) {
      if (mixed_) {
        k_.accumulate_rows_mixed(b_.weight, L_, r0, r1, s_.d + r0, t, kernel_scratch(i));
      } else {
        k_.accumulate_rows(b_.weight, L_, r0, r1, s_.d + r0, t);
      }
    });
  }

  // Runs body over row ranges, each summing into its own copy of t, then adds the copies in task order: the same
  // bits run to run for a given thread count, with no atomics.
  template <typename Body>
  void accumulate_t(const Body& body) {
    const size_t cols = L_.cols();
    std::fill(s_.t, s_.t + cols, 0.0);
    if (threads_ == 1) {
      body(0, 0, L_.rows, s_.t);
      return;
    }
    std::fill(partials_, partials_ + (threads_ - 1) * cols, 0.0);
    parallel_for(threads_, threads_, [&](size_t i) {
      body(i, row_begin(i), row_begin(i + 1), i == 0 ? s_.t : partials_ + (i - 1) * cols);
    });
    for (size_t i = 1; i < threads_; ++i) {
      const double* p = partials_ + (i - 1) * cols;
      for (size_t c = 0; c < cols; ++c) s_.t[c] += p[c];
    }
  }

  const LayerBuffers<T>& b_;
  const PowerOptions& opt_;
  const kernels::Table<T>& k_;
  const MatrixLayout L_;
  const size_t threads_;
  const bool mixed_;
  Scratch<T> s_;
  double* partials_;
  double x_undo_ = 1;                 // mixed: x32 = x / x_undo_
  std::optional<ConvOperator> conv_;  // a convolution layer's operator
};

// Out buffers (other than W itself) that add up to this many bytes in one job get non-temporal stores: they would
// not stay in cache anyway, and skipping the read-for-ownership saves a third of the division's memory traffic.
constexpr size_t kStreamingOutBytes = size_t(16) << 20;

// Writes one layer's result into the caller's buffers; [begin, end) is the part of W to divide.
template <typename T>
void commit_division(const LayerBuffers<T>& b, const LayerResult& r, size_t begin, size_t end, bool stream) {
  if (b.out == nullptr) return;
  if (r.status == LayerStatus::kNormalized) {
    kernels::table<T>().divide(b.weight + begin, b.out + begin, end - begin, static_cast<T>(r.sigma),
                               stream && b.out != b.weight);
  } else if (b.out != b.weight) {
    std::memcpy(b.out + begin, b.weight + begin, (end - begin) * sizeof(T));
  }
}

template <typename T>
void commit_vectors(const LayerBuffers<T>& b, const LayerResult& r, const Scratch<T>& s, const PowerOptions& opt) {
  const bool iterated = opt.tolerance >= 0 || opt.iterations > 0;
  if (b.vector_norm || !iterated || r.status != LayerStatus::kNormalized) return;
  std::copy(s.u_new, s.u_new + b.layout.rows, b.u);
  std::copy(s.v_new, s.v_new + b.layout.cols(), b.v);
}

}  // namespace

template <typename T>
bool run_power_batch(const std::vector<LayerBuffers<T>>& layers, const PowerOptions& options,
                     std::vector<LayerResult>& results) {
  const size_t n = layers.size();
  scratch_allocation_point();
  results.assign(n, LayerResult{});
  const unsigned threads = std::max(1u, options.threads);

  // One arena for the whole batch, allocated before anything is touched.
  ScratchVector<size_t> double_offset(n), t_offset(n);
  size_t doubles = 0, ts = 0, partial_doubles = 0;
  ScratchVector<unsigned> per_layer_threads(n);
  for (size_t i = 0; i < n; ++i) {
    const MatrixLayout& L = layers[i].layout;
    per_layer_threads[i] = layer_threads(layers[i].is_conv ? layers[i].conv.work() : L.size(), threads);
    if (layers[i].vector_norm) continue;
    double_offset[i] = doubles;
    doubles += L.rows + 2 * L.cols();
    t_offset[i] = ts;
    ts += L.rows + L.cols();
    if (layer_mixed(layers[i], options))
      ts += L.cols() + per_layer_threads[i] * kernel_scratch_floats(L, per_layer_threads[i]);
    if (per_layer_threads[i] > 1 && !layers[i].is_conv)
      partial_doubles = std::max(partial_doubles, (per_layer_threads[i] - 1) * L.cols());
  }
  ScratchVector<double> arena_d(doubles + partial_doubles);
  ScratchVector<T> arena_t(ts);
  double* partials = arena_d.data() + doubles;
  auto scratch = [&](size_t i) {
    Scratch<T> s;
    if (layers[i].vector_norm) return s;
    const MatrixLayout& L = layers[i].layout;
    s.x = arena_d.data() + double_offset[i];
    s.d = s.x + L.cols();
    s.t = s.d + L.rows;
    s.u_new = arena_t.data() + t_offset[i];
    s.v_new = s.u_new + L.rows;
    if constexpr (std::is_same_v<T, float>) {
      if (layer_mixed(layers[i], options)) {
        s.x32 = s.v_new + L.cols();
        s.kernel = s.x32 + L.cols();
      }
    }
    return s;
  };

  // Phase 1: every σ, into scratch. Large layers one after another, each over its threads; small layers side by
  // side, one thread each.
  ScratchVector<size_t> small;
  for (size_t i = 0; i < n; ++i) {
    if (per_layer_threads[i] > 1) {
      results[i] = LayerRun<T>(layers[i], options, per_layer_threads[i], scratch(i), partials).run();
    } else {
      small.push_back(i);
    }
  }
  parallel_for(small.size(), threads, [&](size_t k) {
    const size_t i = small[k];
    results[i] = LayerRun<T>(layers[i], options, 1, scratch(i), nullptr).run();
  });

  for (const LayerResult& r : results) {
    if (r.status == LayerStatus::kNonFinite) return false;
  }

  // Phase 2: commit. Large divisions split into chunks over the threads; the bits do not depend on the split.
  constexpr size_t kChunk = kElementsPerThread;
  struct Piece {
    size_t layer, begin, end;
  };
  ScratchVector<Piece> pieces;  // built before the first write, so a failed allocation still modifies nothing
  size_t separate_out_bytes = 0;
  // Last layer first: phase 1 ran the layers in index order, so the last ones are the likeliest still in cache.
  for (size_t i = n; i-- > 0;) {
    if (layers[i].out == nullptr) continue;
    const size_t size = layers[i].weight_size();
    if (layers[i].out != layers[i].weight) separate_out_bytes += size * sizeof(T);
    for (size_t begin = 0; begin < size; begin += kChunk) pieces.push_back({i, begin, std::min(size, begin + kChunk)});
  }
  const bool stream = separate_out_bytes >= kStreamingOutBytes;
  // Made before the first write too: a std::function may allocate.
  const std::function<void(size_t)> divide = [&](size_t k) {
    const Piece& p = pieces[k];
    commit_division(layers[p.layer], results[p.layer], p.begin, p.end, stream);
  };
  for (size_t i = 0; i < n; ++i) commit_vectors(layers[i], results[i], scratch(i), options);
  parallel_for(pieces.size(), threads, divide);
  return true;
}

template bool run_power_batch<float>(const std::vector<LayerBuffers<float>>&, const PowerOptions&,
                                     std::vector<LayerResult>&);
template bool run_power_batch<double>(const std::vector<LayerBuffers<double>>&, const PowerOptions&,
                                      std::vector<LayerResult>&);

}  // namespace sn
