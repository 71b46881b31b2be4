#pragma once
// The largest eigenvalue of a Hermitian positive semidefinite P = A·Aᴴ, estimated and certified: the core of the
// certified bounds on σ (σ² = λ_max(A·Aᴴ)) for each block of the FFT method (conv_spectrum.cpp). The same algorithm
// as lib/conv/hermitian.ts, whose comments give the error analysis:
// - the estimate ρ is a Rayleigh quotient, by power iteration and then, when that stalls on a cluster, by Gram
//   iteration (P², P⁴, … each rescaled), whose columns reach the top eigenspace whatever the gap;
// - a Cholesky factorisation of τI − P that runs to completion proves λ_max(P) ≤ τ plus its rounding margin
//   (Demmel 1989, Rump 2006), and Gram iteration certifies ‖P‖₂ through ‖P^(2^t)‖_F (Delattre et al. 2023).
// A matrix is complex when `im` is not empty; a real one runs the same code in real arithmetic.
#include <cstddef>

#include "scratch_allocator.h"

namespace sn::hermitian {

constexpr double kUnitRoundoff = 0x1p-53;

// γ_n = n·u/(1 − n·u): the relative error bound of a sum of n products in float64.
double gamma(double n);
// x widened by `ops` roundings' worth (and one subnormal step), up or down.
double round_up(double x, double ops = 4);
double round_down(double x, double ops = 4);

struct Matrix {
  size_t rows = 0, cols = 0;
  ScratchVector<double> re, im;
  bool complex() const { return !im.empty(); }
  void resize(size_t r, size_t c, bool is_complex);
};

struct Vector {
  ScratchVector<double> re, im;
  size_t size() const { return re.size(); }
  bool complex() const { return !im.empty(); }
  void resize(size_t n, bool is_complex);
};

// P = A·Aᴴ (rows × rows), exactly Hermitian (lower triangle computed and mirrored, real diagonal). `threads` > 1
// splits the rows.
void gram(const Matrix& a, Matrix& p, unsigned threads);
// c with ‖fl(A·Aᴴ) − A·Aᴴ‖₂ ≤ c·‖A‖_F² for an A of `cols` columns.
double product_error(size_t cols, bool complex);
// Aᴴ.
void adjoint(const Matrix& a, Matrix& t);
// y = A x.
void multiply(const Matrix& a, const Vector& x, Vector& y);
// z = Aᴴ y, without forming Aᴴ.
void multiply_adjoint(const Matrix& a, const Vector& y, Vector& z);
double norm(const Vector& x);
// x /= ‖x‖ (left alone when zero or not finite); returns the norm.
double normalize(Vector& x);
// ‖A‖_F², rounded up.
double frobenius_squared_up(const Matrix& a);

// A certified bound on λ_max(P) if the Cholesky factorisation of τI − P runs to completion; a negative number when
// it breaks down (then λ_max(P) ≥ τ up to rounding).
double cholesky_bound(const Matrix& p, double tau, unsigned threads);

struct TopEigen {
  double rho = 0;    // Rayleigh quotient of `vector`
  Vector vector;     // a unit vector near the top eigenspace
  double bound = 0;  // certified upper bound on λ_max(P)
};

// λ_max(P) to a relative `epsilon`, estimated from `start` and certified (see lib/conv/hermitian.ts topEigen).
TopEigen top_eigen(const Matrix& p, const Vector& start, double epsilon, unsigned threads);

}  // namespace sn::hermitian
