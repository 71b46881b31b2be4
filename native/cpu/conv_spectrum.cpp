#include "conv_spectrum.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "hermitian.h"
#include "scratch_allocator.h"
#include "thread_pool.h"

namespace sn {
namespace {

using hermitian::gamma;
using hermitian::Matrix;
using hermitian::round_up;
using hermitian::Vector;

constexpr double kEpsilon = 0x1p-33;  // the top block's λ is resolved to this relative precision
constexpr int kEstimateSteps = 8;     // power steps per block in the first pass
constexpr double kTwiddleError = 48 * hermitian::kUnitRoundoff;

struct Frequency {
  size_t f1, f2;
  bool real;  // f = −f: the block is real
};

// Half the frequencies: f2 ≤ N2/2, and on the columns that are their own conjugate, f1 ≤ its conjugate.
ScratchVector<Frequency> half_spectrum(size_t n1, size_t n2) {
  ScratchVector<Frequency> list;
  for (size_t f2 = 0; 2 * f2 <= n2; ++f2) {
    const bool self_conjugate_column = f2 == 0 || 2 * f2 == n2;
    for (size_t f1 = 0; f1 < n1; ++f1) {
      const size_t partner = (n1 - f1) % n1;
      if (self_conjugate_column && f1 > partner) continue;
      list.push_back({f1, f2, self_conjugate_column && f1 == partner});
    }
  }
  return list;
}

// The fixed start vector of lib/conv/spectrum.ts's startVector, bit for bit.
void start_vector(size_t n, bool complex, Vector& x) {
  x.resize(n, complex);
  uint32_t state = 0x2545f491u;
  auto next = [&] {
    state = state * 1103515245u + 12345u;
    return double(state) / 4294967296.0 - 0.5;
  };
  for (size_t i = 0; i < n; ++i) {
    x.re[i] = next() + 1e-3;
    if (complex) x.im[i] = next();
  }
  hermitian::normalize(x);
}

class Blocks {
 public:
  Blocks(const SpectrumJob& job, int exponent) : job_(job), g_(job.geometry) {
    width_ = g_.cin * job.rows.phases * job.cols.phases;
    kernel_.resize(g_.kernel_size());
    size_t i = 0;
    for (size_t o = 0; o < g_.cout; ++o) {
      for (size_t c = 0; c < g_.cin; ++c) {
        for (size_t a = 0; a < g_.kh; ++a) {
          for (size_t b = 0; b < g_.kw; ++b)
            kernel_[i++] = std::ldexp(job.kernel[g_.kernel_index(o, c, a, b)], -exponent);
        }
      }
    }
    twiddles(job.rows, g_.kh, row_twiddles_);
    twiddles(job.cols, g_.kw, col_twiddles_);
  }

  size_t width() const { return width_; }

  size_t column(size_t c, size_t r1, size_t r2) const { return (r1 * job_.cols.phases + r2) * g_.cin + c; }

  // A_f, cout × cin' (real when f is its own conjugate). Each entry sums its taps in (a, b) order; row by row, so
  // the writes stay in cache, and in registers when every tap lands in one column (stride 1).
  void block(const Frequency& f, Matrix& a) const {
    a.resize(g_.cout, width_, !f.real);
    const size_t taps = g_.kh * g_.kw;
    ScratchVector<double> zr(taps), zi(taps);
    ScratchVector<size_t> col(taps);
    bool one_column = true;
    for (size_t ta = 0; ta < g_.kh; ++ta) {
      const double rr = row_twiddles_[(f.f1 * g_.kh + ta) * 2], ri = row_twiddles_[(f.f1 * g_.kh + ta) * 2 + 1];
      for (size_t tb = 0; tb < g_.kw; ++tb) {
        const double cr = col_twiddles_[(f.f2 * g_.kw + tb) * 2], ci = col_twiddles_[(f.f2 * g_.kw + tb) * 2 + 1];
        const size_t t = ta * g_.kw + tb;
        zr[t] = rr * cr - ri * ci;
        zi[t] = rr * ci + ri * cr;
        col[t] = column(0, size_t(job_.rows.taps[2 * ta]), size_t(job_.cols.taps[2 * tb]));
        one_column = one_column && col[t] == col[0];
      }
    }
    for (size_t o = 0; o < g_.cout; ++o) {
      const double* k = kernel_.data() + o * g_.cin * taps;  // [c][a][b]
      double* re = a.re.data() + o * width_;
      double* im = f.real ? nullptr : a.im.data() + o * width_;
      for (size_t c = 0; c < g_.cin; ++c, k += taps) {
        if (one_column) {
          double sr = re[col[0] + c], si = im ? im[col[0] + c] : 0.0;
          for (size_t t = 0; t < taps; ++t) {
            sr += k[t] * zr[t];
            si += k[t] * zi[t];
          }
          re[col[0] + c] = sr;
          if (im) im[col[0] + c] = si;
          continue;
        }
        for (size_t t = 0; t < taps; ++t) {
          re[col[t] + c] += k[t] * zr[t];
          if (im) im[col[t] + c] += k[t] * zi[t];
        }
      }
    }
  }

  // ‖|Â_f − A_f|‖₂ ≤ ε_A·‖N‖_F for every f (see lib/conv/spectrum.ts blockError).
  double block_error() const {
    ScratchVector<double> n(g_.cout * width_, 0.0);
    for (size_t o = 0; o < g_.cout; ++o) {
      for (size_t c = 0; c < g_.cin; ++c) {
        for (size_t ta = 0; ta < g_.kh; ++ta) {
          for (size_t tb = 0; tb < g_.kw; ++tb) {
            n[o * width_ + column(c, size_t(job_.rows.taps[2 * ta]), size_t(job_.cols.taps[2 * tb]))] +=
                std::fabs(kernel_[((o * g_.cin + c) * g_.kh + ta) * g_.kw + tb]);
          }
        }
      }
    }
    double s = 0;
    for (double x : n) s += x * x;
    const double taps = double(g_.kh * g_.kw);
    const double epsilon = kTwiddleError + std::sqrt(2.0) * gamma(taps + 1) * (1 + kTwiddleError);
    return round_up(epsilon * round_up(std::sqrt(s), double(n.size()) + 4) * (1 + gamma(taps + 1)), 4);
  }

 private:
  // e^(2πi·f·q/N) for every f < N and every tap's offset q, as (cos, sin) pairs; the argument's k is exact.
  static void twiddles(const CirculantAxis& axis, size_t taps, ScratchVector<double>& table) {
    const size_t n = axis.grid;
    table.assign(n * taps * 2, 0.0);
    for (size_t f = 0; f < n; ++f) {
      for (size_t a = 0; a < taps; ++a) {
        const int64_t q = axis.taps[2 * a + 1];
        const int64_t k = ((int64_t(f) * q) % int64_t(n) + int64_t(n)) % int64_t(n);
        const double angle = 2 * M_PI * double(k) / double(n);
        table[(f * taps + a) * 2] = std::cos(angle);
        table[(f * taps + a) * 2 + 1] = std::sin(angle);
      }
    }
  }

  const SpectrumJob& job_;
  const ConvGeometry& g_;
  size_t width_ = 0;
  ScratchVector<double> kernel_;  // scaled, [o][c][a][b]
  ScratchVector<double> row_twiddles_, col_twiddles_;
};

// A few power steps on Aᴴ·A from the fixed start: the right vector x and ρ = ‖A x‖².
double estimate(const Matrix& a, Vector& x) {
  start_vector(a.cols, a.complex(), x);
  Vector y, z;
  for (int step = 0; step < kEstimateSteps; ++step) {
    hermitian::multiply(a, x, y);
    hermitian::multiply_adjoint(a, y, z);
    if (!(hermitian::normalize(z) > 0)) break;
    std::swap(x, z);
  }
  hermitian::multiply(a, x, y);
  const double n = hermitian::norm(y);
  return n * n;
}

struct Resolved {
  double rho = -1;
  Vector right;
  double bound = 0;
};

// P = Â·Âᴴ (left) or Âᴴ·Â, whichever is smaller; k is the length of its sums.
bool gram_side(const Matrix& a, Matrix& p, size_t& k, unsigned threads) {
  if (a.rows <= a.cols) {
    hermitian::gram(a, p, threads);
    k = a.cols;
    return true;
  }
  Matrix ah;
  hermitian::adjoint(a, ah);
  hermitian::gram(ah, p, threads);
  k = a.rows;
  return false;
}

// The block's λ_max to kEpsilon, certified, from the right vector `start`.
Resolved resolve(const Matrix& a, const Vector& start, unsigned threads) {
  Matrix p;
  size_t k;
  const bool left = gram_side(a, p, k, threads);
  Vector side_start;
  if (left) {
    hermitian::multiply(a, start, side_start);
  } else {
    side_start = start;
  }
  hermitian::TopEigen top = hermitian::top_eigen(p, side_start, kEpsilon, threads);
  Resolved r;
  r.rho = top.rho;
  if (left) {
    hermitian::multiply_adjoint(a, top.vector, r.right);
    hermitian::normalize(r.right);
  } else {
    r.right = std::move(top.vector);
  }
  r.bound = round_up(top.bound + hermitian::product_error(k, a.complex()) * hermitian::frobenius_squared_up(a), 2);
  return r;
}

// A bound on λ_max(Â·Âᴴ) below τ plus margins: ‖Â‖_F², or by a Cholesky factorisation of τI − P; negative if it fails.
double certify_below(const Matrix& a, double tau, double frobenius_squared) {
  if (frobenius_squared <= tau) return frobenius_squared;
  Matrix p;
  size_t k;
  gram_side(a, p, k, 1);
  const double bound = hermitian::cholesky_bound(p, tau, 1);
  if (bound < 0) return -1;
  return round_up(bound + hermitian::product_error(k, a.complex()) * frobenius_squared, 2);
}

// x[c][n1][n2] = Re or Im of v_(c') e^(2πi(f1·m1/N1 + f2·m2/N2)), with n = phases·m + r: the larger of the two.
void input_vector(const SpectrumJob& job, const Blocks& blocks, const Frequency& f, const Vector& v) {
  const ConvGeometry& g = job.geometry;
  const size_t n = g.input_size();
  ScratchVector<double> re(n), im(n);
  for (size_t c = 0; c < g.cin; ++c) {
    for (size_t n1 = 0; n1 < g.h; ++n1) {
      const size_t r1 = n1 % job.rows.phases, m1 = n1 / job.rows.phases;
      for (size_t n2 = 0; n2 < g.w; ++n2) {
        const size_t r2 = n2 % job.cols.phases, m2 = n2 / job.cols.phases;
        const size_t col = blocks.column(c, r1, r2);
        const double k1 = double((f.f1 * m1) % job.rows.grid), k2 = double((f.f2 * m2) % job.cols.grid);
        const double angle = 2 * M_PI * (k1 / double(job.rows.grid) + k2 / double(job.cols.grid));
        const double er = std::cos(angle), ei = std::sin(angle);
        const double vr = v.re[col], vi = v.complex() ? v.im[col] : 0.0;
        re[(c * g.h + n1) * g.w + n2] = vr * er - vi * ei;
        im[(c * g.h + n1) * g.w + n2] = vr * ei + vi * er;
      }
    }
  }
  double sr = 0, si = 0;
  for (size_t i = 0; i < n; ++i) {
    sr += re[i] * re[i];
    si += im[i] * im[i];
  }
  std::copy(sr >= si ? re.begin() : im.begin(), sr >= si ? re.end() : im.end(), job.vector);
}

}  // namespace

SpectrumResult conv_spectrum(const SpectrumJob& job) {
  const ConvGeometry& g = job.geometry;
  double largest = 0;
  for (size_t i = 0; i < g.kernel_size(); ++i) {
    const double x = std::fabs(job.kernel[i]);
    if (!(x <= std::numeric_limits<double>::max())) throw std::range_error("job.weight contains NaN or Infinity");
    largest = std::max(largest, x);
  }
  const ScratchVector<Frequency> frequencies = half_spectrum(job.rows.grid, job.cols.grid);
  SpectrumResult result;
  result.frequencies = frequencies.size();
  if (largest == 0) {
    std::fill(job.vector, job.vector + g.input_size(), 0.0);
    job.vector[0] = 1;
    return result;
  }
  // Scaled by a power of two (exact) so that max|K| is in [1, 2): nothing under- or overflows.
  const int exponent = std::ilogb(largest);
  const Blocks blocks(job, exponent);
  const size_t count = frequencies.size();
  const unsigned threads = std::max(1u, job.threads);

  // 1. Estimates and Frobenius norms of every block.
  ScratchVector<double> rho(count), frobenius(count);
  parallel_ranges(count, threads, [&](size_t, size_t i0, size_t i1) {
    Matrix a;
    Vector x;
    for (size_t i = i0; i < i1; ++i) {
      blocks.block(frequencies[i], a);
      rho[i] = estimate(a, x);
      frobenius[i] = hermitian::frobenius_squared_up(a);
    }
  });
  size_t first = 0;
  for (size_t i = 1; i < count; ++i) {
    if (rho[i] > rho[first]) first = i;
  }

  // 2. The most promising block, resolved: the threshold τ.
  auto resolve_at = [&](size_t i, unsigned inner) {
    Matrix a;
    Vector x;
    blocks.block(frequencies[i], a);
    estimate(a, x);
    return resolve(a, x, inner);
  };
  Resolved best = resolve_at(first, threads);
  size_t best_index = first;
  const double tau = best.rho * (1 + kEpsilon);

  // 3. Every other block certified below τ, or resolved on its own: each task keeps its best such block.
  const size_t tasks = range_tasks(count, threads);
  ScratchVector<double> largest_bound(tasks, 0.0);
  ScratchVector<size_t> refined(tasks, 0), task_best(tasks, count);
  ScratchVector<Resolved> task_resolved(tasks);
  parallel_ranges(count, threads, [&](size_t t, size_t i0, size_t i1) {
    Matrix a;
    for (size_t i = i0; i < i1; ++i) {
      if (i == first) continue;
      blocks.block(frequencies[i], a);
      double bound = certify_below(a, tau, frobenius[i]);
      if (bound < 0) {
        refined[t]++;
        Vector x;
        estimate(a, x);
        Resolved r = resolve(a, x, 1);
        bound = r.bound;
        if (r.rho > task_resolved[t].rho) {
          task_resolved[t] = std::move(r);
          task_best[t] = i;
        }
      }
      largest_bound[t] = std::max(largest_bound[t], bound);
    }
  });
  double bound = best.bound;
  result.refined = 1;
  for (size_t t = 0; t < tasks; ++t) {
    bound = std::max(bound, largest_bound[t]);
    result.refined += refined[t];
    if (task_best[t] < count && task_resolved[t].rho > best.rho) {
      best = std::move(task_resolved[t]);
      best_index = task_best[t];
    }
  }
  const double upper = round_up(round_up(std::sqrt(bound), 2) + blocks.block_error(), 2);
  input_vector(job, blocks, frequencies[best_index], best.right);
  result.upper = round_up(std::ldexp(upper, exponent), 2);
  result.estimate = std::ldexp(std::sqrt(std::max(0.0, best.rho)), exponent);
  return result;
}

}  // namespace sn
