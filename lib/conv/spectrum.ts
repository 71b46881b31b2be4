// The FFT method in TypeScript (the js backend's convSpectrum; native/cpu/conv_spectrum.cpp is the same algorithm):
// the largest singular value of a block-circulant convolution, certified, and the input that attains it.
//
// Sedghi, Gupta & Long (ICLR 2019): a stride-1 circular convolution on an N1 × N2 grid is block-diagonalised by the
// 2-D DFT, with one cout × cin' block per frequency, A_f = Σ_taps K_tap·e^(2πi(f1·q1/N1 + f2·q2/N2)); its singular
// values are those of all the blocks. A real kernel gives A_(−f) = conj(A_f), so half the frequencies suffice.
// Here each block's σ² = λ_max(A_f·A_fᴴ) is certified by hermitian.ts:
// 1. every frequency gets a cheap estimate (a few power steps on A_f) and ‖A_f‖_F²;
// 2. the frequency with the largest estimate is resolved to a relative 2^-33, giving the threshold τ = ρ·(1 + ε);
// 3. every other frequency is certified below τ by ‖A_f‖_F² ≤ τ, or else by a Cholesky factorisation of τI − P_f;
//    one that fails is resolved on its own (its σ exceeds the first estimate).
// Rounding is accounted for throughout: the blocks' own errors (twiddles, sums), P_f's, and the certificates'.
import type { ConvSpectrumJob, ConvSpectrumResult } from '../../binding';
import { maxAbs, powerOfTwoScaling } from '../scaling';
import { kernelIndexer } from './geometry';
import {
  type Matrix,
  type Vector,
  adjoint,
  choleskyBound,
  gramOf,
  multiply,
  normalized,
  productError,
  topEigen,
  vectorNorm,
} from './hermitian';
import { UNIT_ROUNDOFF, gamma, roundUp } from './rounding';

/** The relative precision to which the top frequency's λ is resolved: well inside the 1e-9 promised on σ. */
export const SPECTRUM_EPSILON = 2 ** -33;

/** Power steps per frequency in the first pass. */
const ESTIMATE_STEPS = 8;

/** The error of one computed twiddle e^(iθ1)·e^(iθ2) (two cos/sin pairs of arguments 2π·k/N, and a product). */
const TWIDDLE_ERROR = 48 * UNIT_ROUNDOFF;

/** A fixed, well-spread start vector: deterministic, and orthogonal to no structured singular vector in practice. */
export function startVector(n: number, complex: boolean): Vector {
  const re = new Float64Array(n);
  const im = complex ? new Float64Array(n) : null;
  let state = 0x2545f491;
  const next = () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 4294967296 - 0.5;
  };
  for (let i = 0; i < n; i++) {
    re[i] = next() + 1e-3;
    if (im) im[i] = next();
  }
  return re.length > 0 ? normalized({ re, im }) : { re, im };
}

interface Frequency {
  f1: number;
  f2: number;
  /** f = −f: A_f is real. */
  real: boolean;
}

/** Half the frequencies: f2 ≤ N2/2, and on the columns that are their own conjugate, f1 ≤ its conjugate. */
function halfSpectrum(n1: number, n2: number): Frequency[] {
  const list: Frequency[] = [];
  for (let f2 = 0; 2 * f2 <= n2; f2++) {
    const selfConjugateColumn = f2 === 0 || 2 * f2 === n2;
    for (let f1 = 0; f1 < n1; f1++) {
      const partner = (n1 - f1) % n1;
      if (selfConjugateColumn && f1 > partner) continue;
      list.push({ f1, f2, real: selfConjugateColumn && f1 === partner });
    }
  }
  return list;
}

/** e^(2πi·f·q/N) for every frequency f < N and every tap's offset q, as [cos, sin] pairs. */
function twiddles(n: number, taps: Int32Array, frequencies: number): Float64Array {
  const count = taps.length / 2;
  const table = new Float64Array(frequencies * count * 2);
  for (let f = 0; f < frequencies; f++) {
    for (let a = 0; a < count; a++) {
      const k = (((f * taps[2 * a + 1]) % n) + n) % n; // exact: the argument is 2π·k/N with an integer k < N
      const angle = (2 * Math.PI * k) / n;
      table[(f * count + a) * 2] = Math.cos(angle);
      table[(f * count + a) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

class Blocks {
  readonly cout: number;
  readonly cin: number;
  /** Columns of a block: cin·phases. */
  readonly width: number;
  private readonly rowTwiddles: Float64Array;
  private readonly colTwiddles: Float64Array;
  private readonly kernel: Float64Array; // scaled, as [o][c][a][b]
  private readonly kh: number;
  private readonly kw: number;

  constructor(
    readonly job: ConvSpectrumJob,
    scale: (x: number) => number,
  ) {
    const op = job.operator;
    this.cout = op.outChannels;
    this.cin = op.inChannels;
    this.kh = op.kernelHeight;
    this.kw = op.kernelWidth;
    this.width = this.cin * job.phasesHeight * job.phasesWidth;
    const at = kernelIndexer(op);
    this.kernel = new Float64Array(this.cout * this.cin * this.kh * this.kw);
    let i = 0;
    for (let o = 0; o < this.cout; o++) {
      for (let c = 0; c < this.cin; c++) {
        for (let a = 0; a < this.kh; a++) for (let b = 0; b < this.kw; b++) this.kernel[i++] = scale(job.weight[at(o, c, a, b)]);
      }
    }
    this.rowTwiddles = twiddles(job.gridHeight, job.rowTaps, job.gridHeight);
    this.colTwiddles = twiddles(job.gridWidth, job.colTaps, job.gridWidth);
  }

  /** The block column of input channel c in phase (r1, r2). */
  column(c: number, r1: number, r2: number): number {
    return (r1 * this.job.phasesWidth + r2) * this.cin + c;
  }

  /** A_f, cout × cin' (real when f is its own conjugate). */
  block(f: Frequency): Matrix {
    const { cout, cin, kh, kw, width, job } = this;
    const a: Matrix = { rows: cout, cols: width, re: new Float64Array(cout * width), im: f.real ? null : new Float64Array(cout * width) };
    for (let ta = 0; ta < kh; ta++) {
      const rr = this.rowTwiddles[(f.f1 * kh + ta) * 2];
      const ri = this.rowTwiddles[(f.f1 * kh + ta) * 2 + 1];
      for (let tb = 0; tb < kw; tb++) {
        const cr = this.colTwiddles[(f.f2 * kw + tb) * 2];
        const ci = this.colTwiddles[(f.f2 * kw + tb) * 2 + 1];
        const zr = rr * cr - ri * ci;
        const zi = rr * ci + ri * cr;
        const column = this.column(0, job.rowTaps[2 * ta], job.colTaps[2 * tb]);
        for (let o = 0; o < cout; o++) {
          const kbase = (o * cin * kh + ta) * kw + tb;
          const abase = o * width + column;
          for (let c = 0; c < cin; c++) {
            const k = this.kernel[kbase + c * kh * kw];
            a.re[abase + c] += k * zr;
            if (a.im) a.im[abase + c] += k * zi;
          }
        }
      }
    }
    return a;
  }

  /**
   * ‖|Â_f − A_f|‖₂ ≤ ε_A·‖N‖_F for every f, with N[o][c'] = Σ of |K| over the taps that reach (o, c'): each entry
   * of A_f sums at most kh·kw taps, each a kernel value times a twiddle off by at most TWIDDLE_ERROR.
   */
  blockError(): number {
    const { cout, cin, kh, kw, width, job } = this;
    const n = new Float64Array(cout * width);
    for (let o = 0; o < cout; o++) {
      for (let c = 0; c < cin; c++) {
        for (let ta = 0; ta < kh; ta++) {
          for (let tb = 0; tb < kw; tb++) {
            n[o * width + this.column(c, job.rowTaps[2 * ta], job.colTaps[2 * tb])] += Math.abs(
              this.kernel[((o * cin + c) * kh + ta) * kw + tb],
            );
          }
        }
      }
    }
    let s = 0;
    for (const x of n) s += x * x;
    const epsilon = TWIDDLE_ERROR + Math.SQRT2 * gamma(kh * kw + 1) * (1 + TWIDDLE_ERROR);
    return roundUp(epsilon * roundUp(Math.sqrt(s), n.length + 4) * (1 + gamma(kh * kw + 1)), 4);
  }
}

function frobeniusSquaredUp(a: Matrix): number {
  let s = 0;
  for (let i = 0; i < a.re.length; i++) s += a.re[i] * a.re[i] + (a.im ? a.im[i] * a.im[i] : 0);
  return roundUp(s, 2 * a.re.length + 2);
}

/** A few power steps on Aᴴ·A from the fixed start: the right vector and ρ = ‖A x‖². */
function estimate(a: Matrix): { x: Vector; rho: number } {
  const aH = adjoint(a);
  let x = startVector(a.cols, a.im !== null);
  for (let step = 0; step < ESTIMATE_STEPS; step++) {
    const next = normalized(multiply(aH, multiply(a, x)));
    if (!(vectorNorm(next) > 0)) break;
    x = next;
  }
  return { x, rho: vectorNorm(multiply(a, x)) ** 2 };
}

interface Resolved {
  rho: number;
  /** The block's top right singular vector. */
  right: Vector;
  /** Certified bound on λ_max(Â·Âᴴ) for the computed block Â. */
  bound: number;
}

/** P = Â·Âᴴ (left: on the rows' side) or Âᴴ·Â, whichever is smaller, and the length of its sums. */
function gramSide(a: Matrix): { p: Matrix; left: boolean; k: number } {
  if (a.rows <= a.cols) return { p: gramOf(a), left: true, k: a.cols };
  return { p: gramOf(adjoint(a)), left: false, k: a.rows };
}

/** The block's λ_max to SPECTRUM_EPSILON, certified. */
function resolve(a: Matrix, start: Vector): Resolved {
  const side = gramSide(a);
  const top = topEigen(side.p, side.left ? multiply(a, start) : start, SPECTRUM_EPSILON);
  const right = side.left ? normalized(multiply(adjoint(a), top.vector)) : top.vector;
  const productMargin = productError(side.k, a.im !== null) * frobeniusSquaredUp(a);
  return { rho: top.rho, right, bound: roundUp(top.bound + productMargin, 2) };
}

/** A bound on λ_max(Â·Âᴴ) below τ (plus margins): ‖Â‖_F², or a Cholesky factorisation of τI − P; null if it fails. */
function certifyBelow(a: Matrix, tau: number, frobeniusSquared: number): number | null {
  if (frobeniusSquared <= tau) return frobeniusSquared;
  const side = gramSide(a);
  const bound = choleskyBound(side.p, tau);
  if (bound === null) return null;
  return roundUp(bound + productError(side.k, a.im !== null) * frobeniusSquared, 2);
}

/** The input vector for a block's right vector v at frequency f: x[c][n1][n2] = Re or Im of v_(c') e^(2πi f·m/N). */
function inputVector(job: ConvSpectrumJob, blocks: Blocks, f: Frequency, v: Vector): void {
  const op = job.operator;
  const { inputHeight: h, inputWidth: w, inChannels: cin } = op;
  const re = new Float64Array(cin * h * w);
  const im = new Float64Array(cin * h * w);
  for (let c = 0; c < cin; c++) {
    for (let n1 = 0; n1 < h; n1++) {
      const r1 = n1 % job.phasesHeight;
      const m1 = Math.floor(n1 / job.phasesHeight);
      for (let n2 = 0; n2 < w; n2++) {
        const r2 = n2 % job.phasesWidth;
        const m2 = Math.floor(n2 / job.phasesWidth);
        const col = blocks.column(c, r1, r2);
        const k1 = (f.f1 * m1) % job.gridHeight;
        const k2 = (f.f2 * m2) % job.gridWidth;
        const angle = 2 * Math.PI * (k1 / job.gridHeight + k2 / job.gridWidth);
        const er = Math.cos(angle);
        const ei = Math.sin(angle);
        const vr = v.re[col];
        const vi = v.im ? v.im[col] : 0;
        re[(c * h + n1) * w + n2] = vr * er - vi * ei;
        im[(c * h + n1) * w + n2] = vr * ei + vi * er;
      }
    }
  }
  // Re and Im are both top singular vectors of the real operator when f ≠ −f; keep the larger (never both zero).
  job.vector.set(sumSq(re) >= sumSq(im) ? re : im);
}

function sumSq(x: Float64Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s;
}

/** convSpectrum for the js backend: see binding.d.ts's ConvSpectrumJob. */
export function circulantSpectrum(job: ConvSpectrumJob): ConvSpectrumResult {
  const largest = maxAbs(job.weight);
  if (largest.nonFinite >= 0) throw new RangeError('job.weight contains NaN or Infinity');
  const frequencies = halfSpectrum(job.gridHeight, job.gridWidth);
  if (largest.value === 0) {
    job.vector.fill(0);
    job.vector[0] = 1;
    return { upper: 0, estimate: 0, frequencies: frequencies.length, refined: 0 };
  }
  const { down, up } = powerOfTwoScaling(largest.value);
  const blocks = new Blocks(job, down);

  // 1. Estimates and Frobenius norms of every block.
  const estimates = frequencies.map((f) => {
    const a = blocks.block(f);
    const { rho } = estimate(a);
    return { rho, frobenius: frobeniusSquaredUp(a) };
  });
  let first = 0;
  estimates.forEach((e, i) => {
    if (e.rho > estimates[first].rho) first = i;
  });

  // 2. The most promising frequency, resolved: the threshold.
  const resolveAt = (i: number): Resolved => {
    const a = blocks.block(frequencies[i]);
    return resolve(a, estimate(a).x);
  };
  let best = { index: first, resolved: resolveAt(first) };
  const tau = best.resolved.rho * (1 + SPECTRUM_EPSILON);

  // 3. Every other frequency certified below τ, or resolved on its own.
  let largestBound = best.resolved.bound;
  let refined = 1;
  frequencies.forEach((f, i) => {
    if (i === first) return;
    const a = blocks.block(f);
    let bound = certifyBelow(a, tau, estimates[i].frobenius);
    if (bound === null) {
      refined++;
      const resolved = resolve(a, estimate(a).x);
      bound = resolved.bound;
      if (resolved.rho > best.resolved.rho) best = { index: i, resolved };
    }
    largestBound = Math.max(largestBound, bound);
  });

  const upper = up(roundUp(roundUp(Math.sqrt(largestBound), 2) + blocks.blockError(), 2));
  inputVector(job, blocks, frequencies[best.index], best.resolved.right);
  return { upper: roundUp(upper, 2), estimate: up(Math.sqrt(Math.max(0, best.resolved.rho))), frequencies: frequencies.length, refined };
}
