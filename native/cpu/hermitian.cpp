#include "hermitian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "conv_kernels.h"
#include "thread_pool.h"

namespace sn::hermitian {
namespace {

constexpr int kPowerSteps = 96;
constexpr size_t kShortRow = 16;  // shorter rows of a product are summed inline, not by the SIMD kernels
constexpr int kGramLevels = 40;

const double* imag(const Matrix& m) { return m.complex() ? m.im.data() : nullptr; }
const double* imag(const Vector& v) { return v.complex() ? v.im.data() : nullptr; }

// Re(xᴴ P x) for a unit x.
double rayleigh(const Matrix& p, const Vector& x, Vector& scratch) {
  multiply(p, x, scratch);
  double re, im;
  conv_kernels::table().dot(scratch.re.data(), imag(scratch), x.re.data(), imag(x), x.size(), &re, &im);
  return re;
}

// G_t = P^(2^t) / 2^(scale), with each level's exponent and Frobenius norm (rounded up).
struct GramState {
  Matrix g, next;
  ScratchVector<int> exponents;
  ScratchVector<double> frobenius;
};

double frobenius_up(const Matrix& g) { return round_up(std::sqrt(frobenius_squared_up(g)), 4); }

// Divides by the power of two nearest the Frobenius norm (exact); returns the exponent.
int rescale(Matrix& g) {
  const double f = frobenius_up(g);
  if (!(f > 0) || !std::isfinite(f)) return 0;
  const int e = static_cast<int>(std::lround(std::log2(f)));
  const double factor = std::ldexp(1.0, -e);
  for (double& x : g.re) x *= factor;
  for (double& x : g.im) x *= factor;
  return e;
}

// ‖P‖₂ ≤ the bound, carried back through s_t² ≤ 2^(e_(t+1))·s_(t+1) + c·‖G_t‖_F² from s_T ≤ ‖G_T‖_F.
double gram_bound(const GramState& s) {
  const size_t levels = s.frobenius.size();
  const double c = product_error(s.g.rows, s.g.complex());
  double bound = s.frobenius[levels - 1];
  for (size_t t = levels - 1; t-- > 0;) {
    const double f = s.frobenius[t];
    bound = round_up(std::sqrt(round_up(std::ldexp(bound, s.exponents[t + 1]) + c * f * f, 4)), 2);
  }
  return round_up(std::ldexp(bound, s.exponents[0]), 1);
}

}  // namespace

double gamma(double n) {
  const double nu = n * kUnitRoundoff;
  if (!(nu < 0.5)) throw std::range_error("gamma out of range");
  return nu / (1 - nu);
}

double round_up(double x, double ops) {
  return x == 0 ? 0 : x * (1 + 2 * ops * kUnitRoundoff) + std::numeric_limits<double>::denorm_min();
}

double round_down(double x, double ops) {
  return std::max(0.0, x * (1 - 2 * ops * kUnitRoundoff) - std::numeric_limits<double>::denorm_min());
}

void Matrix::resize(size_t r, size_t c, bool is_complex) {
  rows = r;
  cols = c;
  re.assign(r * c, 0.0);
  if (is_complex) {
    im.assign(r * c, 0.0);
  } else {
    im.clear();
  }
}

void Vector::resize(size_t n, bool is_complex) {
  re.assign(n, 0.0);
  if (is_complex) {
    im.assign(n, 0.0);
  } else {
    im.clear();
  }
}

void gram(const Matrix& a, Matrix& p, unsigned threads) {
  const size_t n = a.rows, k = a.cols;
  p.resize(n, n, a.complex());
  const conv_kernels::Table& kt = conv_kernels::table();
  // Rows weigh i·k each: split so the ranges hold about equal triangles.
  const size_t tasks = std::max<size_t>(1, std::min<size_t>(threads, n / 16));
  auto bound = [&](size_t t) {
    return static_cast<size_t>(static_cast<double>(n) * std::sqrt(double(t) / double(tasks)));
  };
  auto rows = [&](size_t t) {
    const size_t i0 = t == 0 ? 0 : bound(t), i1 = t + 1 == tasks ? n : bound(t + 1);
    if (i1 > i0) kt.gram_rows(a.re.data(), imag(a), n, k, i0, i1, p.re.data(), p.complex() ? p.im.data() : nullptr);
  };
  if (tasks == 1) {
    rows(0);
  } else {
    parallel_for(tasks, static_cast<unsigned>(tasks), rows);
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < i; ++j) {
      p.re[j * n + i] = p.re[i * n + j];
      if (p.complex()) p.im[j * n + i] = -p.im[i * n + j];
    }
  }
}

double product_error(size_t cols, bool complex) {
  return complex ? std::sqrt(2.0) * gamma(2.0 * double(cols) + 2) : gamma(double(cols) + 1);
}

void adjoint(const Matrix& a, Matrix& t) {
  t.resize(a.cols, a.rows, a.complex());
  // In square tiles, so that both the rows read and the rows written stay in cache.
  constexpr size_t kTile = 32;
  for (size_t i0 = 0; i0 < a.rows; i0 += kTile) {
    const size_t i1 = std::min(a.rows, i0 + kTile);
    for (size_t j0 = 0; j0 < a.cols; j0 += kTile) {
      const size_t j1 = std::min(a.cols, j0 + kTile);
      for (size_t j = j0; j < j1; ++j) {
        for (size_t i = i0; i < i1; ++i) t.re[j * a.rows + i] = a.re[i * a.cols + j];
      }
      if (!a.complex()) continue;
      for (size_t j = j0; j < j1; ++j) {
        for (size_t i = i0; i < i1; ++i) t.im[j * a.rows + i] = -a.im[i * a.cols + j];
      }
    }
  }
}

void multiply_adjoint(const Matrix& a, const Vector& y, Vector& z) {
  const bool complex = a.complex() || y.complex();
  z.resize(a.cols, complex);
  const size_t n = a.cols;
  if (n < kShortRow) {
    // Short rows: z_j = Σ_i conj(A_ij)·y_i a column at a time, in the same order of i as below.
    const double* yi = y.complex() ? y.im.data() : nullptr;
    for (size_t j = 0; j < n; ++j) {
      double sr = 0, si = 0;
      for (size_t i = 0; i < a.rows; ++i) {
        const double ar = a.re[i * n + j], ai = a.complex() ? a.im[i * n + j] : 0.0;
        const double yr = y.re[i], yim = yi ? yi[i] : 0.0;
        sr += ar * yr + ai * yim;
        si += ar * yim - ai * yr;
      }
      z.re[j] = sr;
      if (complex) z.im[j] = si;
    }
    return;
  }
  // z += conj(A_i)ᵀ·y_i row by row: every access is contiguous.
  for (size_t i = 0; i < a.rows; ++i) {
    const double* ar = a.re.data() + i * n;
    const double yr = y.re[i], yi = y.complex() ? y.im[i] : 0.0;
    double* zr = z.re.data();
    if (!complex) {
      for (size_t j = 0; j < n; ++j) zr[j] += ar[j] * yr;
      continue;
    }
    double* zi = z.im.data();
    if (a.complex()) {
      const double* ai = a.im.data() + i * n;
      for (size_t j = 0; j < n; ++j) {
        zr[j] += ar[j] * yr + ai[j] * yi;
        zi[j] += ar[j] * yi - ai[j] * yr;
      }
    } else {
      for (size_t j = 0; j < n; ++j) {
        zr[j] += ar[j] * yr;
        zi[j] += ar[j] * yi;
      }
    }
  }
}

void multiply(const Matrix& a, const Vector& x, Vector& y) {
  const bool complex = a.complex() || x.complex();
  y.resize(a.rows, complex);
  const size_t n = a.cols;
  const conv_kernels::Table& kt = conv_kernels::table();
  // The kernel's dot conjugates its second argument: conj(x) in, A_i·x out.
  ScratchVector<double> conj_im;
  if (a.complex() && x.complex() && n >= kShortRow) {
    conj_im.resize(n);
    for (size_t j = 0; j < n; ++j) conj_im[j] = -x.im[j];
  }
  for (size_t i = 0; i < a.rows; ++i) {
    const double* ar = a.re.data() + i * n;
    double re, im = 0, unused;
    if (n < kShortRow) {
      // Too short for the kernel's call and vector set-up to pay.
      const double* ai = a.complex() ? a.im.data() + i * n : nullptr;
      const double* xi = x.complex() ? x.im.data() : nullptr;
      re = 0;
      for (size_t j = 0; j < n; ++j) {
        re += ar[j] * x.re[j] - (ai && xi ? ai[j] * xi[j] : 0.0);
        im += (ai ? ai[j] * x.re[j] : 0.0) + (xi ? ar[j] * xi[j] : 0.0);
      }
    } else if (a.complex() && x.complex()) {
      kt.dot(ar, a.im.data() + i * n, x.re.data(), conj_im.data(), n, &re, &im);
    } else if (a.complex()) {
      kt.dot(ar, nullptr, x.re.data(), nullptr, n, &re, &unused);
      kt.dot(a.im.data() + i * n, nullptr, x.re.data(), nullptr, n, &im, &unused);
    } else {
      kt.dot(ar, nullptr, x.re.data(), nullptr, n, &re, &unused);
      if (x.complex()) kt.dot(ar, nullptr, x.im.data(), nullptr, n, &im, &unused);
    }
    y.re[i] = re;
    if (complex) y.im[i] = im;
  }
}

double norm(const Vector& x) {
  double s = 0;
  for (double v : x.re) s += v * v;
  for (double v : x.im) s += v * v;
  return std::sqrt(s);
}

double normalize(Vector& x) {
  const double n = norm(x);
  if (!(n > 0) || !std::isfinite(n)) return n;
  for (double& v : x.re) v /= n;
  for (double& v : x.im) v /= n;
  return n;
}

double frobenius_squared_up(const Matrix& a) {
  double s = 0;
  for (double v : a.re) s += v * v;
  for (double v : a.im) s += v * v;
  return round_up(s, 2.0 * double(a.re.size()) + 2);
}

double cholesky_bound(const Matrix& p, double tau, unsigned threads) {
  const size_t m = p.rows;
  const bool complex = p.complex();
  Matrix l;
  l.resize(m, m, complex);
  const conv_kernels::Table& kt = conv_kernels::table();
  double trace = 0, largest_diagonal = 0;
  for (size_t j = 0; j < m; ++j) {
    const double diagonal = tau - p.re[j * m + j];
    trace += diagonal;
    largest_diagonal = std::max(largest_diagonal, std::fabs(p.re[j * m + j]));
    double re, im;
    const double* lj_r = l.re.data() + j * m;
    const double* lj_i = complex ? l.im.data() + j * m : nullptr;
    kt.dot(lj_r, lj_i, lj_r, lj_i, j, &re, &im);
    const double s = diagonal - re;
    if (!(s > 0)) return -1;
    const double pivot = std::sqrt(s);
    l.re[j * m + j] = pivot;
    // L_ij = (−P_ij − Σ_l L_il·conj(L_jl)) / L_jj for i > j.
    auto column = [&](size_t i0, size_t i1) {
      for (size_t i = j + 1 + i0; i < j + 1 + i1; ++i) {
        double dr, di;
        kt.dot(l.re.data() + i * m, complex ? l.im.data() + i * m : nullptr, lj_r, lj_i, j, &dr, &di);
        l.re[i * m + j] = (-p.re[i * m + j] - dr) / pivot;
        if (complex) l.im[i * m + j] = (-p.im[i * m + j] - di) / pivot;
      }
    };
    const size_t below = m - j - 1;
    if (threads > 1 && below * (j + 1) > 65536) {
      parallel_ranges(below, threads, [&](size_t, size_t i0, size_t i1) { column(i0, i1); });
    } else {
      column(0, below);
    }
  }
  const double g = complex ? std::sqrt(2.0) * gamma(2.0 * double(m) + 4) : gamma(double(m) + 2);
  const double trace_up = round_up(trace, double(m) + 2);
  const double diagonal_rounding = kUnitRoundoff * (tau + largest_diagonal);
  return round_up(tau + g * trace_up / (1 - g) + diagonal_rounding, 8);
}

TopEigen top_eigen(const Matrix& p, const Vector& start, double epsilon, unsigned threads) {
  TopEigen r;
  Vector& x = r.vector;
  x = start;
  if (!(normalize(x) > 0)) {
    x.resize(p.rows, p.complex());
    std::fill(x.re.begin(), x.re.end(), 1.0 / std::sqrt(double(p.rows)));
  }
  Vector y, scratch;
  double rho = rayleigh(p, x, scratch);
  for (int step = 0; step < kPowerSteps; ++step) {
    multiply(p, x, y);
    if (!(normalize(y) > 0)) break;
    const double next = rayleigh(p, y, scratch);
    const bool settled = std::fabs(next - rho) <= (epsilon / 16) * std::fabs(next);
    std::swap(x, y);
    rho = next;
    if (settled) break;
  }
  double best = rho > 0 ? cholesky_bound(p, rho * (1 + epsilon), threads) : -1;
  if (best >= 0) {
    r.rho = rho;
    r.bound = best;
    return r;
  }
  GramState s;
  s.g = p;
  s.exponents.push_back(rescale(s.g));
  s.frobenius.push_back(frobenius_up(s.g));
  double last_tried = rho;
  for (int level = 1; level <= kGramLevels; ++level) {
    gram(s.g, s.next, threads);  // G is Hermitian: G·Gᴴ = G²
    std::swap(s.g, s.next);
    s.exponents.push_back(rescale(s.g));
    s.frobenius.push_back(frobenius_up(s.g));
    multiply(s.g, x, y);
    if (normalize(y) > 0) {
      const double next = rayleigh(p, y, scratch);
      if (next >= rho) {
        rho = next;
        std::swap(x, y);
      }
    }
    const double bound = gram_bound(s);
    best = best < 0 ? bound : std::min(best, bound);
    if (best <= rho * (1 + epsilon) * (1 + 1e-12)) break;
    if (rho > last_tried * (1 + epsilon / 16) || level % 8 == 0) {
      last_tried = rho;
      const double cholesky = rho > 0 ? cholesky_bound(p, rho * (1 + epsilon), threads) : -1;
      if (cholesky >= 0) {
        best = std::min(best, cholesky);
        break;
      }
    }
    if (s.frobenius.back() <= 2 * std::numeric_limits<double>::denorm_min()) break;  // P was nilpotent: zero
  }
  r.rho = rho;
  r.bound = best < 0 ? gram_bound(s) : best;
  return r;
}

}  // namespace sn::hermitian
