// exactSpectralNorm: the largest singular value to float64 accuracy, as the audit and test reference.
//
// Golub–Kahan–Lanczos bidiagonalisation with full reorthogonalisation builds A V = U B with B upper bidiagonal;
// σ_max(B) converges to σ_max(A) from below, fast (Kaniel–Paige), and exactly once the Krylov space is invariant.
// σ_max(B) comes from bisection on BᵀB, and the Ritz residual β_k·|x_k| says when to stop.
import type { FloatArray } from '../binding';
import { matrixGeometry } from './layout';
import { startVectors } from './random';
import { maxAbs, powerOfTwoScaling } from './scaling';
import { checkDim, checkKnownKeys, checkObject, checkShape, checkWeight } from './validate';

/** exactSpectralNorm's options: how the weight is read as a matrix. */
export interface ExactSpectralNormOptions {
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
}

/**
 * The relative residual at which the iteration stops: a bound on σ's relative error. Where the top singular value is
 * repeated (no gap to square the residual away) the error is as large as this bound, and 1e-11 left σ a hair below
 * the largest row norm: 1e-13 costs a few more steps.
 */
const TARGET = 1e-13;

/**
 * The largest singular value of `weight` seen as a matrix along `dim`, in float64, with relative error ≤ 1e-10
 * (typically ~1e-15) against LAPACK, for any rank and aspect ratio. Throws a RangeError for NaN or Infinity.
 */
export function exactSpectralNorm(weight: FloatArray, shape: readonly number[], options: ExactSpectralNormOptions = {}): number {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['dim']);
  const s = checkShape('shape', shape);
  const w = checkWeight('weight', weight, s);
  const dim = checkDim('options.dim', opts.dim, s.length);

  const largest = maxAbs(w);
  if (largest.nonFinite >= 0) throw new RangeError(`weight contains NaN or Infinity (at index ${largest.nonFinite})`);
  if (largest.value === 0) return 0;
  // Scale by a power of two (exact) so the largest entry is near 1: no overflow or underflow at any magnitude.
  const { down: scaleBy, up: unscale } = powerOfTwoScaling(largest.value);

  const g = matrixGeometry(s, dim, false);
  if (g.vectorNorm) {
    let sum = 0;
    for (let i = 0; i < w.length; i++) sum += scaleBy(w[i]) ** 2;
    return unscale(Math.sqrt(sum));
  }
  const m = g.rows;
  const n = g.cols;
  // A contiguous, scaled float64 copy of the matrix: this reference favours clarity over memory.
  const a = new Float64Array(m * n);
  for (let o = 0; o < g.outer; o++) {
    for (let r = 0; r < m; r++) {
      for (let i = 0; i < g.inner; i++) a[r * n + o * g.inner + i] = scaleBy(w[(o * m + r) * g.inner + i]);
    }
  }
  return unscale(largestSingularValue(a, m, n));
}

function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  return s;
}

function norm(x: Float64Array): number {
  return Math.sqrt(dot(x, x));
}

/** Classical Gram–Schmidt, twice ("twice is enough"): x ⟂ every vector of basis. */
function reorthogonalize(x: Float64Array, basis: readonly Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    for (const b of basis) {
      const c = dot(x, b);
      for (let i = 0; i < x.length; i++) x[i] -= c * b[i];
    }
  }
}

function largestSingularValue(a: Float64Array, m: number, n: number): number {
  const multiply = (x: Float64Array, y: Float64Array) => {
    // y = A x
    for (let r = 0; r < m; r++) {
      let s = 0;
      const base = r * n;
      for (let c = 0; c < n; c++) s += a[base + c] * x[c];
      y[r] = s;
    }
  };
  const multiplyTransposed = (y: Float64Array, x: Float64Array) => {
    // x = Aᵀ y
    x.fill(0);
    for (let r = 0; r < m; r++) {
      const yr = y[r];
      const base = r * n;
      for (let c = 0; c < n; c++) x[c] += a[base + c] * yr;
    }
  };

  const maxSteps = Math.min(m, n);
  const alpha: number[] = [];
  const beta: number[] = [];
  const us: Float64Array[] = [];
  const vs: Float64Array[] = [];

  let v = new Float64Array(startVectors(0, 0, n, 'float64').v);
  vs.push(v);
  let p = new Float64Array(m);
  multiply(v, p);
  let a1 = norm(p);
  if (a1 === 0) {
    // The start vector lies in the null space (measure zero unless A is tiny in rank): try another one.
    v = new Float64Array(startVectors(1, 0, n, 'float64').v);
    vs[0] = v;
    multiply(v, p);
    a1 = norm(p);
    if (a1 === 0) return bisectLargest(alpha.concat([0]), beta);
  }
  alpha.push(a1);
  us.push(p.map((x) => x / a1));

  let sigma: number;
  for (let k = 1; k <= maxSteps; k++) {
    const u = us[k - 1];
    const r = new Float64Array(n);
    multiplyTransposed(u, r);
    const ak = alpha[k - 1];
    for (let i = 0; i < n; i++) r[i] -= ak * vs[k - 1][i];
    reorthogonalize(r, vs);
    const bk = norm(r);
    sigma = bisectLargest(alpha, beta);
    // β_k ≈ 0: the Krylov space is invariant, so σ_max(B_k) is a singular value of A, and almost surely the largest.
    if (bk <= 1e-15 * sigma) return sigma;
    if (k === maxSteps) {
      // U (m < n) or V (n ≤ m) now spans its whole space. For n ≤ m, β_k is rounding noise and B_k is complete.
      // For m < n, Aᵀ = [V_k v_k+1]·[B_k | β_k e_k]ᵀ·U_kᵀ exactly: σ of that k × (k+1) bidiagonal, that is of
      // B_k+1 with α_k+1 = 0.
      return n <= m ? sigma : bisectLargest([...alpha, 0], [...beta, bk]);
    }
    // The Ritz pair's residual is β_k·|x_k|, with x_k = α_k·y_k/σ and y B's top right singular vector.
    const y = topEigenvector(alpha, beta, sigma * sigma);
    // Some singular value lies within the residual of σ; σ ≤ σ_max always (interlacing), and the Krylov space of a
    // random start meets the top singular vector almost surely. No quadratic (res²/gap) shortcut: the gap to the
    // rest of the true spectrum is unknown, and a cluster at the top makes any estimate of it misleading.
    const residual = (bk * ak * Math.abs(y[k - 1])) / sigma;
    if (residual <= TARGET * sigma) return sigma;

    beta.push(bk);
    const vNext = r.map((x) => x / bk);
    vs.push(vNext);
    p = new Float64Array(m);
    multiply(vNext, p);
    for (let i = 0; i < m; i++) p[i] -= bk * u[i];
    reorthogonalize(p, us);
    const aNext = norm(p);
    alpha.push(aNext);
    if (aNext <= 1e-15 * sigma) return bisectLargest(alpha, beta); // invariant again: B is complete
    us.push(p.map((x) => x / aNext));
  }
  return bisectLargest(alpha, beta);
}

/** The tridiagonal T = BᵀB of the upper bidiagonal B (diagonal α, superdiagonal β), as (diagonal, offdiagonal). */
function gram(alpha: readonly number[], beta: readonly number[]): { d: number[]; e: number[] } {
  const k = alpha.length;
  const d: number[] = [];
  const e: number[] = [];
  for (let j = 0; j < k; j++) {
    d.push(alpha[j] * alpha[j] + (j > 0 ? beta[j - 1] * beta[j - 1] : 0));
    if (j + 1 < k) e.push(alpha[j] * beta[j]);
  }
  return { d, e };
}

/** Eigenvalues of the symmetric tridiagonal (d, e) below x: the Sturm sequence count. */
function countBelow(d: readonly number[], e: readonly number[], x: number): number {
  let count = 0;
  let q = 1;
  for (let i = 0; i < d.length; i++) {
    q = d[i] - x - (i > 0 ? (e[i - 1] * e[i - 1]) / q : 0);
    if (q === 0) q = -Number.MIN_VALUE;
    if (q < 0) count++;
  }
  return count;
}

/** The eigenvalue of (d, e) with exactly `index` eigenvalues below it, by bisection to the last bit. */
function bisect(d: readonly number[], e: readonly number[], index: number): number {
  let hi = 0;
  for (let i = 0; i < d.length; i++) {
    hi = Math.max(hi, d[i] + (i > 0 ? Math.abs(e[i - 1]) : 0) + (i < e.length ? Math.abs(e[i]) : 0));
  }
  let lo = 0;
  hi = hi * (1 + 1e-15) + Number.MIN_VALUE;
  if (!Number.isFinite(hi)) return NaN;
  for (;;) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) return hi;
    if (countBelow(d, e, mid) > index) hi = mid;
    else lo = mid;
  }
}

function bisectLargest(alpha: readonly number[], beta: readonly number[]): number {
  const { d, e } = gram(alpha, beta);
  return Math.sqrt(bisect(d, e, d.length - 1));
}

/** The unit eigenvector of BᵀB for the eigenvalue lambda, by two steps of inverse iteration. */
function topEigenvector(alpha: readonly number[], beta: readonly number[], lambda: number): Float64Array {
  const { d, e } = gram(alpha, beta);
  const k = d.length;
  let y = new Float64Array(k).fill(1 / Math.sqrt(k));
  const tiny = 1e-300 + Number.EPSILON * Math.abs(lambda);
  for (let step = 0; step < 2; step++) {
    // Solve (T − λI) z = y by the Thomas algorithm; a pivot at 0 is nudged, as inverse iteration allows.
    const c = new Float64Array(k);
    const z = new Float64Array(k);
    let pivot = d[0] - lambda || tiny;
    z[0] = y[0] / pivot;
    for (let i = 1; i < k; i++) {
      c[i - 1] = e[i - 1] / pivot;
      pivot = d[i] - lambda - e[i - 1] * c[i - 1] || tiny;
      z[i] = (y[i] - e[i - 1] * z[i - 1]) / pivot;
    }
    for (let i = k - 2; i >= 0; i--) z[i] -= c[i] * z[i + 1];
    const size = norm(z);
    y = z.map((x) => x / size);
  }
  return y;
}
