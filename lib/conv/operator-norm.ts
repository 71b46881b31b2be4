// convSpectralNorm: the operator norm of a convolution on its input size, with certified bounds, and
// certifiedBounds: the same bracket for a dense matrix (spectralNorm's `certify`), read as a 1×1 convolution.
//
// Circular padding whose outputs are exactly the rows of the block-circulant (stride 1 with padding (k−1)/2, or a
// stride that divides the input with a matching output size) is exact: the FFT method resolves σ and certifies it.
// Otherwise σ comes from power iteration through the convolution and its transpose (Ryu et al. 2019), started from
// the circulant's top singular vector, and the upper bound from the circulant that contains the operator: a
// zero-padded convolution is a restriction of a circular one on a slightly larger grid, and striding only keeps some
// of its rows, which never increases the norm. Both bounds account for rounding.
import type { ConvOperator, ConvSpectrumJob, FloatArray, PowerJob } from '../../binding';
import { type BackendName, type ResolvedBackend, checkOperatorBackendOption, defaultThreads, resolveOperatorBackend } from '../backends';
import { LayerStatus } from '../codes';
import { allocateResults } from '../engine';
import { maxAbs, powerOfTwoScaling, scaledCopy } from '../scaling';
import {
  MAX_ITERATIONS,
  MAX_THREADS,
  checkInteger,
  checkKnownKeys,
  checkNonNegative,
  checkObject,
  checkShape,
  checkWeight,
} from '../validate';
import { CONV_OPTION_KEYS, type ConvOptions, checkConv, circulantPlan, inputLength, outputSize } from './geometry';
import { absoluteNormBound, certifiedRatio } from './ratio';
import { roundUp } from './rounding';

/** convSpectralNorm's options: the convolution (ConvOptions), when power iteration stops, and where it runs. */
export interface ConvSpectralNormOptions extends ConvOptions {
  /** Power iteration stops once σ changes by at most tolerance·σ. Default 1e-6. */
  tolerance?: number;
  /** Default 1000. */
  maxIterations?: number;
  /** 'auto' (default), 'cpu' or 'js'. The cuda backend does not run convolution operators yet. */
  backend?: 'auto' | 'cuda' | 'cpu' | 'js';
  /** CPU threads; default: the cores this process may use. */
  threads?: number;
}

/** What convSpectralNorm returns: σ of the convolution as an operator, and certified bounds on it. */
export interface ConvSpectralNormResult {
  /** The operator norm (largest singular value) of x ↦ conv2d(x, W) on the input size, as estimated. */
  sigma: number;
  /** Certified: lower ≤ true σ ≤ upper, rounding included. `lower` is the norm ratio of an explicit input. */
  lower: number;
  /** Certified: no singular value of the operator exceeds it, rounding included. */
  upper: number;
  /** Power iterations through the convolution and its transpose (0 for the FFT method). */
  iterations: number;
  /** Whether σ met the tolerance: power iteration settled, or upper − lower ≤ tolerance·upper. */
  converged: boolean;
  /** 'fft': exact, the operator is its own block-circulant; 'power-iteration': σ by iteration, upper from the circulant. */
  method: 'fft' | 'power-iteration';
  /** The backend that ran the iteration or the spectrum: 'cpu' or 'js'. */
  backend: BackendName;
}

const KEYS = [...CONV_OPTION_KEYS, 'tolerance', 'maxIterations', 'backend', 'threads'];

/** A ConvSpectrumJob for the operator's circulant (or its stride-1 version's). */
function spectrumJob(
  kernel: Float64Array,
  op: ConvOperator,
  threads: number,
  stride1: boolean,
): { job: ConvSpectrumJob; multiplicity: number; exact: boolean } {
  const plan = circulantPlan(op, stride1);
  const taps = (phase: number[], offset: number[]) => Int32Array.from(phase.flatMap((p, a) => [p, offset[a]]));
  const job: ConvSpectrumJob = {
    weight: kernel,
    operator: op,
    gridHeight: plan.rows.grid,
    gridWidth: plan.cols.grid,
    phasesHeight: plan.rows.phases,
    phasesWidth: plan.cols.phases,
    rowTaps: taps(plan.rows.tapPhase, plan.rows.tapOffset),
    colTaps: taps(plan.cols.tapPhase, plan.cols.tapOffset),
    threads,
    vector: new Float64Array(inputLength(op)),
  };
  return { job, multiplicity: plan.multiplicity, exact: plan.exact };
}

/** The certified lower bound from an explicit input x, through the backend's float64 convolution. */
export function lowerBound(
  backend: ResolvedBackend,
  kernel: FloatArray,
  op: ConvOperator,
  x: Float64Array,
  threads: number,
  absolute: number,
): number {
  const y = new Float64Array(outputSize(op));
  backend.impl.convApply({ weight: kernel, operator: op, transpose: false, input: x, output: y, threads });
  return certifiedRatio(op, absolute, x, y);
}

/** The certified upper bound of the operator's circulant(s), and the circulant's top vector as a start. */
function circulantBound(backend: ResolvedBackend, kernel: Float64Array, op: ConvOperator, threads: number) {
  // An output that repeats a circulant row m times at most: ‖C‖ ≤ √m·‖circulant‖.
  const repeated = (upper: number, multiplicity: number) => (multiplicity === 1 ? upper : roundUp(upper * Math.sqrt(multiplicity), 2));
  const main = spectrumJob(kernel, op, threads, false);
  const result = backend.impl.convSpectrum(main.job);
  let upper = repeated(result.upper, main.multiplicity);
  if (op.strideHeight > 1 || op.strideWidth > 1) {
    // Striding keeps some of the stride-1 operator's rows: its bound holds too, and the smaller one counts (so a
    // stride never raises the bound, even by the last bits of an exact one).
    const stride1 = spectrumJob(kernel, op, threads, true);
    upper = Math.min(upper, repeated(backend.impl.convSpectrum(stride1.job).upper, stride1.multiplicity));
  }
  return { upper, estimate: result.estimate, vector: main.job.vector, exact: main.exact };
}

/** Power iteration through the convolution and its transpose, to the tolerance, from `start` (float64). */
function powerIteration(
  backend: ResolvedBackend,
  kernel: Float64Array,
  op: ConvOperator,
  start: Float64Array,
  tolerance: number,
  maxIterations: number,
  threads: number,
) {
  const rows = outputSize(op);
  const cols = inputLength(op);
  const u = new Float64Array(rows);
  u[0] = 1;
  const v = start.slice();
  if (!v.some((x) => x !== 0)) v.fill(1);
  const job: PowerJob = {
    dtype: 'float64',
    layers: [{ weight: kernel, out: null, u, v, outer: 1, rows, inner: cols, vectorNorm: false, operator: op }],
    iterations: maxIterations,
    tolerance,
    eps: 0,
    precision: 'float64',
    legacy: false,
    threads,
    ...allocateResults(1),
  };
  if (!backend.impl.run(job) || job.status[0] === LayerStatus.NonFinite) {
    throw new RangeError('weight overflowed during power iteration; nothing was modified');
  }
  return { sigma: job.sigma[0], iterations: job.iterationsRun[0], converged: job.converged[0] === 1, v };
}

/**
 * The largest singular value of the operator x ↦ conv2d(x, W) on an input of `inputSize` (PyTorch's Conv2d without
 * bias, on one image), with certified bounds lower ≤ σ ≤ upper. Never modifies the weight.
 */
export function convSpectralNorm(weight: FloatArray, shape: readonly number[], options: ConvSpectralNormOptions): ConvSpectralNormResult {
  if (options === undefined) throw new TypeError('options is required: { inputSize: [h, w], ... }');
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, KEYS);
  const s = checkShape('shape', shape);
  const w = checkWeight('weight', weight, s);
  const op = checkConv('options', opts, s, 'shape');
  const tolerance = checkNonNegative('options.tolerance', opts.tolerance, 1e-6);
  const maxIterations = checkInteger('options.maxIterations', opts.maxIterations, 1, MAX_ITERATIONS, 1000);
  const threads = checkInteger('options.threads', opts.threads, 1, MAX_THREADS, defaultThreads());
  const backend = resolveOperatorBackend(checkOperatorBackendOption('options.backend', opts.backend));
  const largest = maxAbs(w);
  if (largest.nonFinite >= 0) {
    throw new RangeError(`weight contains NaN or Infinity (at index ${largest.nonFinite}); nothing was modified`);
  }
  if (largest.value === 0) {
    return { sigma: 0, lower: 0, upper: 0, iterations: 0, converged: true, method: 'fft', backend: backend.name };
  }
  // Scaled by a power of two (exact) so that max|K| is near 1: nothing under- or overflows, and σ(2^k·W) is exactly
  // 2^k·σ(W) in every step. The results scale back exactly.
  const { down, up } = powerOfTwoScaling(largest.value);
  const kernel = scaledCopy(w, down);
  const circulant = circulantBound(backend, kernel, op, threads);
  const absolute = absoluteNormBound(kernel, op);
  const lowerFrom = (x: Float64Array) => lowerBound(backend, kernel, op, x, threads, absolute);
  const upper = up(circulant.upper);
  if (circulant.exact) {
    const lower = up(lowerFrom(circulant.vector));
    const sigma = Math.min(upper, Math.max(lower, up(circulant.estimate)));
    return { sigma, lower, upper, iterations: 0, converged: upper - lower <= tolerance * upper, method: 'fft', backend: backend.name };
  }
  const run = powerIteration(backend, kernel, op, circulant.vector, tolerance, maxIterations, threads);
  const lower = up(Math.max(lowerFrom(run.v), lowerFrom(circulant.vector)));
  const sigma = Math.min(upper, Math.max(lower, up(run.sigma)));
  return { sigma, lower, upper, iterations: run.iterations, converged: run.converged, method: 'power-iteration', backend: backend.name };
}
