// The largest eigenvalue of a Hermitian positive semidefinite matrix P = A·Aᴴ, estimated and certified: the core of
// the certified bounds on σ (σ² = λ_max(A·Aᴴ)) for dense matrices and for each frequency of a convolution.
//
// The estimate ρ is a Rayleigh quotient, first by power iteration on P, then (when that stalls on a cluster at the
// top) by Gram iteration: P, P², P⁴, … each normalised, whose columns converge to the top eigenspace whatever the gap.
// Two certificates bound λ_max from above, and the smaller one counts:
// - a Cholesky factorisation of τI − P that runs to completion proves τI − P positive definite up to its rounding
//   errors (Demmel 1989; Rump 2006, "Verification of positive definiteness"), so λ_max(P) ≤ τ + margin;
// - Gram iteration (Delattre et al., ICML 2023): λ_max(P)^(2^t) ≤ ‖P^(2^t)‖_F, with each squaring's rounding error
//   carried back through the recursion.
// A complex matrix has `im`; a real one has `im` null and runs the same code in real arithmetic.
import { UNIT_ROUNDOFF, gamma, roundUp } from './rounding';

export interface Matrix {
  rows: number;
  cols: number;
  re: Float64Array;
  im: Float64Array | null;
}

export interface Vector {
  re: Float64Array;
  im: Float64Array | null;
}

export function zeroMatrix(rows: number, cols: number, complex: boolean): Matrix {
  return { rows, cols, re: new Float64Array(rows * cols), im: complex ? new Float64Array(rows * cols) : null };
}

/** Aᴴ, as a new matrix. */
export function adjoint(a: Matrix): Matrix {
  const t = zeroMatrix(a.cols, a.rows, a.im !== null);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) {
      t.re[j * a.rows + i] = a.re[i * a.cols + j];
      if (a.im) t.im![j * a.rows + i] = -a.im[i * a.cols + j];
    }
  }
  return t;
}

/**
 * P = A·Aᴴ (rows × rows), exactly Hermitian: the lower triangle is computed and mirrored, and the diagonal is real.
 * Each entry is a sum of 2·cols real products, so |P̂ − P| ≤ √2·γ_(2·cols)·|A||A|ᴴ (γ_cols for a real A), and
 * ‖P̂ − P‖₂ ≤ that constant times ‖A‖_F²: productError gives it.
 */
export function gramOf(a: Matrix): Matrix {
  const { rows: n, cols: k, re, im } = a;
  const p = zeroMatrix(n, n, im !== null);
  for (let i = 0; i < n; i++) {
    const bi = i * k;
    for (let j = 0; j <= i; j++) {
      const bj = j * k;
      let sr = 0;
      let si = 0;
      if (im) {
        for (let l = 0; l < k; l++) {
          const ar = re[bi + l];
          const ai = im[bi + l];
          const br = re[bj + l];
          const bim = im[bj + l];
          sr += ar * br + ai * bim;
          si += ai * br - ar * bim;
        }
      } else {
        for (let l = 0; l < k; l++) sr += re[bi + l] * re[bj + l];
      }
      if (i === j) si = 0;
      p.re[i * n + j] = sr;
      p.re[j * n + i] = sr;
      if (p.im) {
        p.im[i * n + j] = si;
        p.im[j * n + i] = -si;
      }
    }
  }
  return p;
}

/** The constant c with ‖fl(A·Aᴴ) − A·Aᴴ‖₂ ≤ c·‖A‖_F², for an A with `cols` columns. */
export function productError(cols: number, complex: boolean): number {
  return complex ? Math.SQRT2 * gamma(2 * cols + 2) : gamma(cols + 1);
}

/** y = A x. */
export function multiply(a: Matrix, x: Vector): Vector {
  const { rows, cols, re, im } = a;
  const y: Vector = { re: new Float64Array(rows), im: im || x.im ? new Float64Array(rows) : null };
  for (let i = 0; i < rows; i++) {
    let sr = 0;
    let si = 0;
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const ar = re[base + j];
      const ai = im ? im[base + j] : 0;
      const xr = x.re[j];
      const xi = x.im ? x.im[j] : 0;
      sr += ar * xr - ai * xi;
      si += ar * xi + ai * xr;
    }
    y.re[i] = sr;
    if (y.im) y.im[i] = si;
  }
  return y;
}

export function vectorNorm(x: Vector): number {
  let s = 0;
  for (let i = 0; i < x.re.length; i++) s += x.re[i] * x.re[i] + (x.im ? x.im[i] * x.im[i] : 0);
  return Math.sqrt(s);
}

/** x / ‖x‖ (x itself when it is zero). */
export function normalized(x: Vector): Vector {
  const n = vectorNorm(x);
  if (!(n > 0) || !Number.isFinite(n)) return x;
  return { re: x.re.map((v) => v / n), im: x.im ? x.im.map((v) => v / n) : null };
}

/** Re(xᴴ P x) for a unit x: the Rayleigh quotient of a Hermitian P. */
function rayleigh(p: Matrix, x: Vector): number {
  const y = multiply(p, x);
  let s = 0;
  for (let i = 0; i < x.re.length; i++) s += x.re[i] * y.re[i] + (x.im && y.im ? x.im[i] * y.im[i] : 0);
  return s;
}

/**
 * A certified bound on λ_max(P) for the Hermitian P as stored, if the Cholesky factorisation of H = τI − P runs to
 * completion; null when it breaks down (then λ_max(P) ≥ τ, up to rounding).
 *
 * Completion gives L̂L̂ᴴ = H + ΔH with |ΔH| ≤ g·|L̂||L̂|ᴴ, g = γ_(m+2) (real) or √2·γ_(2m+4) (complex), so
 * ‖ΔH‖₂ ≤ g·‖L̂‖_F² ≤ g·trace(H)/(1 − g) and λ_min(H) ≥ −g·trace(H)/(1 − g). H's diagonal was rounded once.
 */
export function choleskyBound(p: Matrix, tau: number): number | null {
  const m = p.rows;
  const complex = p.im !== null;
  const lr = new Float64Array(m * m);
  const li = complex ? new Float64Array(m * m) : null;
  let trace = 0;
  let largestDiagonal = 0;
  for (let j = 0; j < m; j++) {
    const diagonal = tau - p.re[j * m + j];
    trace += diagonal;
    largestDiagonal = Math.max(largestDiagonal, Math.abs(p.re[j * m + j]));
    let s = diagonal;
    for (let l = 0; l < j; l++) {
      const r = lr[j * m + l];
      const i = li ? li[j * m + l] : 0;
      s -= r * r + i * i;
    }
    if (!(s > 0)) return null;
    const pivot = Math.sqrt(s);
    lr[j * m + j] = pivot;
    for (let i = j + 1; i < m; i++) {
      // H_ij = −P_ij; L_ij = (H_ij − Σ_l L_il·conj(L_jl)) / L_jj.
      let sr = -p.re[i * m + j];
      let si = complex ? -p.im![i * m + j] : 0;
      for (let l = 0; l < j; l++) {
        const ar = lr[i * m + l];
        const br = lr[j * m + l];
        if (li) {
          const ai = li[i * m + l];
          const bi = li[j * m + l];
          sr -= ar * br + ai * bi;
          si -= ai * br - ar * bi;
        } else {
          sr -= ar * br;
        }
      }
      lr[i * m + j] = sr / pivot;
      if (li) li[i * m + j] = si / pivot;
    }
  }
  const g = complex ? Math.SQRT2 * gamma(2 * m + 4) : gamma(m + 2);
  const traceUp = roundUp(trace, m + 2);
  const diagonalRounding = UNIT_ROUNDOFF * (tau + largestDiagonal);
  return roundUp(tau + (g * traceUp) / (1 - g) + diagonalRounding, 8);
}

/** The state of a Gram iteration: G_t = P^(2^t) / 2^(scale_t), with each level's exponent and Frobenius norm. */
interface GramState {
  g: Matrix;
  /** e_t: G_t = fl(G_(t−1)²) / 2^(e_t), for t ≥ 1; exponents[0] scales P itself. */
  exponents: number[];
  /** ‖G_t‖_F, rounded up, for every level so far. */
  frobenius: number[];
}

function frobeniusUp(g: Matrix): number {
  let s = 0;
  for (let i = 0; i < g.re.length; i++) s += g.re[i] * g.re[i] + (g.im ? g.im[i] * g.im[i] : 0);
  return roundUp(Math.sqrt(s), g.re.length + 4);
}

/** Divides by the power of two nearest the Frobenius norm: exact, and keeps every level near 1. */
function rescale(g: Matrix): number {
  const f = frobeniusUp(g);
  if (!(f > 0) || !Number.isFinite(f)) return 0;
  const e = Math.round(Math.log2(f));
  const factor = 2 ** -e;
  for (let i = 0; i < g.re.length; i++) g.re[i] *= factor;
  if (g.im) for (let i = 0; i < g.im.length; i++) g.im[i] *= factor;
  return e;
}

function startGram(p: Matrix): GramState {
  const g: Matrix = { rows: p.rows, cols: p.cols, re: p.re.slice(), im: p.im ? p.im.slice() : null };
  const e = rescale(g);
  return { g, exponents: [e], frobenius: [frobeniusUp(g)] };
}

function squareGram(state: GramState): void {
  // G is Hermitian, so G·G = G·Gᴴ.
  state.g = gramOf(state.g);
  state.exponents.push(rescale(state.g));
  state.frobenius.push(frobeniusUp(state.g));
}

/**
 * The certified bound on ‖P‖₂ ≥ λ_max(P) from the Gram iteration so far. With s_t = ‖G_t‖₂:
 * s_t² = ‖G_t·G_tᴴ‖₂ ≤ 2^(e_(t+1))·s_(t+1) + c·‖G_t‖_F² (c: productError), and s_T ≤ ‖G_T‖_F; the recursion runs
 * back to s_0, and ‖P‖₂ = 2^(e_0)·s_0.
 */
function gramBound(state: GramState): number {
  const levels = state.frobenius.length;
  const c = productError(state.g.rows, state.g.im !== null);
  let bound = state.frobenius[levels - 1];
  for (let t = levels - 2; t >= 0; t--) {
    const f = state.frobenius[t];
    bound = roundUp(Math.sqrt(roundUp(2 ** state.exponents[t + 1] * bound + c * f * f, 4)), 2);
  }
  return roundUp(2 ** state.exponents[0] * bound, 1);
}

export interface TopEigen {
  /** The Rayleigh quotient of `vector`: an estimate of λ_max(P) from below (up to rounding). */
  rho: number;
  /** A unit vector near the top eigenspace. */
  vector: Vector;
  /** A certified upper bound on λ_max(P) for P as stored. */
  bound: number;
  /** Power steps and Gram squarings run. */
  steps: number;
}

const POWER_STEPS = 96;
const GRAM_LEVELS = 40;

/**
 * λ_max(P) to a relative `epsilon`: estimated from `start` and certified. The bound is ≤ ρ·(1 + epsilon) plus the
 * margins whenever the iteration resolves the top of the spectrum within GRAM_LEVELS squarings; it is a valid bound
 * in every case.
 */
export function topEigen(p: Matrix, start: Vector, epsilon: number): TopEigen {
  let x = normalized(start);
  if (!(vectorNorm(x) > 0)) x = { re: new Float64Array(p.rows).fill(1 / Math.sqrt(p.rows)), im: p.im ? new Float64Array(p.rows) : null };
  let rho = rayleigh(p, x);
  let steps = 0;
  // Power iteration: cheap (m² a step) and enough unless the top of the spectrum is clustered.
  for (; steps < POWER_STEPS; steps++) {
    const y = normalized(multiply(p, x));
    if (!(vectorNorm(y) > 0)) break;
    const next = rayleigh(p, y);
    const settled = Math.abs(next - rho) <= (epsilon / 16) * Math.abs(next);
    x = y;
    rho = next;
    if (settled) break;
  }
  let best = rho > 0 ? choleskyBound(p, rho * (1 + epsilon)) : null;
  if (best !== null) return { rho, vector: x, bound: best, steps };
  // Gram iteration: G_t ∝ P^(2^t), so G_t·x is 2^t power steps at once, and ‖G_t‖_F certifies λ_max.
  const state = startGram(p);
  let lastTried = rho;
  for (let level = 1; level <= GRAM_LEVELS; level++) {
    squareGram(state);
    steps++;
    const y = normalized(multiply(state.g, x));
    if (vectorNorm(y) > 0) {
      const next = rayleigh(p, y);
      if (next >= rho) {
        rho = next;
        x = y;
      }
    }
    const gram = gramBound(state);
    best = best === null ? gram : Math.min(best, gram);
    if (best <= rho * (1 + epsilon) * (1 + 1e-12)) break;
    if (rho > lastTried * (1 + epsilon / 16) || level % 8 === 0) {
      lastTried = rho;
      const cholesky = rho > 0 ? choleskyBound(p, rho * (1 + epsilon)) : null;
      if (cholesky !== null) {
        best = Math.min(best, cholesky);
        break;
      }
    }
    if (state.frobenius[level] <= 2 * Number.MIN_VALUE) break; // P is nilpotent in floating point: zero
  }
  return { rho, vector: x, bound: best ?? gramBound(state), steps };
}
