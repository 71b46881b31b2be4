// spectralNorm and spectralNormalize: σ of one weight to a tolerance, with no state kept between calls.
import type { FloatArray, PowerJob } from '../binding';
import { type BackendName, type BackendOption, type ResolvedBackend, checkBackendOption, defaultThreads, resolveBackend } from './backends';
import type { CostedJob } from './cost-model';
import { type Core, buildJob, finish, runAsync, runSync } from './engine';
import { type MatrixGeometry, matrixGeometry } from './layout';
import { withCallerStack } from './operation-queue';
import { startVectors } from './random';
import { maxAbs, powerOfTwoScaling } from './scaling';
import {
  MAX_ITERATIONS,
  MAX_THREADS,
  checkDim,
  checkInteger,
  checkKnownKeys,
  checkNonNegative,
  checkObject,
  checkPrecision,
  checkSeed,
  checkShape,
  checkTargets,
  dtypeOf,
  type Precision,
} from './validate';

export interface SpectralNormOptions {
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Stop once σ changes by at most tolerance·σ between iterations. Default 1e-6. */
  tolerance?: number;
  /** Default 1000. */
  maxIterations?: number;
  /** Seed for the start vector. Default 0, so results are reproducible. */
  seed?: number;
  /** σ ≤ eps counts as a zero matrix: spectralNormalize then leaves the weight as it is. Default 0. */
  eps?: number;
  /** 'mixed' (default) or 'float64': how float32 products are summed (see CommonOptions.precision). */
  precision?: Precision;
  backend?: 'auto' | 'cuda' | 'cpu' | 'js';
  threads?: number;
  /** The CUDA device of the cuda backend (default 0). */
  device?: number;
}

export interface SpectralNormalizeOptions extends SpectralNormOptions {
  /** Receives W/σ; without it the weight is divided in place. */
  out?: FloatArray;
}

export interface SpectralNormResult {
  /** The largest singular value, as estimated. In the weight's dtype's precision. */
  sigma: number;
  /** Left and right singular vector estimates, in the weight's dtype (empty for a 1-D weight). */
  u: FloatArray;
  v: FloatArray;
  /** Power iterations run. */
  iterations: number;
  /** Whether σ settled to the tolerance within maxIterations. */
  converged: boolean;
  backend: BackendName;
}

const KEYS = ['dim', 'tolerance', 'maxIterations', 'seed', 'eps', 'precision', 'backend', 'threads', 'device'];

/** One validated one-shot call, ready to run: its job (one layer), backend and start seed. */
export interface Prepared {
  job: PowerJob;
  backend: ResolvedBackend;
  seed: number;
  geometry: MatrixGeometry;
}

/**
 * Validates a one-shot call and builds its job. `preset` is a backend option and thread count checked once for many
 * calls (the coalescer's): checking the backend asks the addon about CUDA, which costs a request more than its
 * arithmetic on a small layer. With a preset, `options` must not set backend or threads.
 */
export function prepare(
  weight: unknown,
  shapeValue: unknown,
  options: unknown,
  divide: boolean,
  preset?: { option: BackendOption; threads: number },
): Prepared {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, divide ? [...KEYS, 'out'] : KEYS);
  const shape = checkShape('shape', shapeValue);
  const outMode = opts.out === undefined ? ('in-place' as const) : { outs: [opts.out], names: () => 'options.out' };
  const targets = checkTargets([{ shape }], undefined, [weight], () => 'weight', divide ? outMode : 'none');
  const w = targets.weights[0];
  const out = targets.outs[0];
  const dtype = dtypeOf(w);
  const dim = checkDim('options.dim', opts.dim, shape.length);
  const tolerance = checkNonNegative('options.tolerance', opts.tolerance, 1e-6);
  const maxIterations = checkInteger('options.maxIterations', opts.maxIterations, 1, MAX_ITERATIONS, 1000);
  const seed = checkSeed('options.seed', opts.seed) ?? 0;
  const eps = checkNonNegative('options.eps', opts.eps, 0);
  const precision = checkPrecision('options.precision', opts.precision);
  const threads = preset ? preset.threads : checkInteger('options.threads', opts.threads, 1, MAX_THREADS, defaultThreads());
  // A device of its own is checked against the preset's backend, as a call of its own would be.
  const option =
    preset && opts.device === undefined
      ? preset.option
      : checkBackendOption('options.backend', preset ? preset.option.choice : opts.backend, 'options.device', opts.device);
  const geometry = matrixGeometry(shape, dim, false);
  const backend = resolveBackend(option, convergeJob([geometry], dtype, precision, maxIterations, threads, [out !== null]));
  const { u, v } = startVectors(seed, geometry.uLength, geometry.vLength, dtype);
  const job = buildJob([{ geometry, u, v }], [w], [out], { dtype, iterations: maxIterations, tolerance, eps, precision, legacy: false, threads });
  return { job, backend, seed, geometry };
}

/**
 * One-shot calls picked per call, and coalesced batches per batch: a converge-mode job of at most `maxIterations`
 * passes (the cost model costs it at that many: see expectedIterations).
 */
export function convergeJob(
  geometries: readonly MatrixGeometry[],
  dtype: PowerJob['dtype'],
  precision: Precision,
  maxIterations: number,
  threads: number,
  divides: readonly boolean[],
): CostedJob {
  return {
    layers: geometries.map((g, i) => ({ elements: g.rows * g.cols, vectorNorm: g.vectorNorm, divide: divides[i] })),
    dtype,
    precision,
    iterations: maxIterations,
    converge: true,
    legacy: false,
    threads,
    onDevice: false,
  };
}

/**
 * A float64 weight with only subnormal entries has σ² (or even 1/σ) outside double's range, so the iteration cannot
 * run on it as it is. When a job failed and the weight is in fact finite, this is the same job on a copy scaled by
 * a power of two (exact), and a function that maps the copy's results back. Null when a retry would not help.
 */
function rescaled(prepared: Prepared): { job: PowerJob; restore: () => void } | null {
  const original = prepared.job;
  const layer = original.layers[0];
  const w = layer.weight;
  if (original.dtype !== 'float64') return null;
  const largest = maxAbs(w);
  if (largest.nonFinite >= 0) return null;
  const { down, up } = powerOfTwoScaling(largest.value);
  const scaled = Float64Array.from(w, down);
  const { geometry } = prepared;
  const { u, v } = startVectors(prepared.seed, geometry.uLength, geometry.vLength, 'float64');
  const out = layer.out === null ? null : new Float64Array(w.length);
  const job = buildJob([{ geometry, u, v }], [scaled], [out], original);
  const restore = () => {
    original.sigma[0] = up(job.sigma[0]);
    original.status.set(job.status);
    original.iterationsRun.set(job.iterationsRun);
    original.converged.set(job.converged);
    layer.u.set(job.layers[0].u);
    layer.v.set(job.layers[0].v);
    // W/σ is the same for the copy, which was scaled exactly.
    if (out !== null && layer.out !== null) layer.out.set(out);
  };
  return { job, restore };
}

export function result(prepared: Prepared, allFinite: boolean): SpectralNormResult {
  const r = finish(prepared.job, allFinite, () => 'weight');
  const layer = prepared.job.layers[0];
  return {
    sigma: r.sigma[0],
    u: layer.u,
    v: layer.v,
    iterations: r.iterationsRun[0],
    converged: r.converged[0] === 1,
    backend: prepared.backend.name,
  };
}

/** The job, and when it failed on a finite weight, its rescaled retry. */
function* oneShotCore(prepared: Prepared): Core<SpectralNormResult> {
  let ok = yield prepared.job;
  const retry = ok ? null : rescaled(prepared);
  if (retry) {
    ok = yield retry.job;
    if (ok) retry.restore();
  }
  return result(prepared, ok);
}

function runOneShot(prepared: Prepared): SpectralNormResult {
  return runSync(prepared.backend, oneShotCore(prepared));
}

export function runOneShotAsync(prepared: Prepared): Promise<SpectralNormResult> {
  return runAsync(prepared.backend, oneShotCore(prepared));
}

/**
 * The largest singular value of `weight` seen as a matrix along `dim`, by power iteration from a seeded start to a
 * relative tolerance. Scale-invariant (σ(cW) = |c|σ(W) at any magnitude); never modifies the weight.
 */
export function spectralNorm(weight: FloatArray, shape: readonly number[], options: SpectralNormOptions = {}): SpectralNormResult {
  return runOneShot(prepare(weight, shape, options, false));
}

export function spectralNormAsync(
  weight: FloatArray,
  shape: readonly number[],
  options: SpectralNormOptions = {},
): Promise<SpectralNormResult> {
  return withCallerStack(async () => runOneShotAsync(prepare(weight, shape, options, false)));
}

/** spectralNorm, then W/σ into `out` or in place. A zero matrix (σ ≤ eps) is left as it is. */
export function spectralNormalize(
  weight: FloatArray,
  shape: readonly number[],
  options: SpectralNormalizeOptions = {},
): SpectralNormResult {
  return runOneShot(prepare(weight, shape, options, true));
}

export function spectralNormalizeAsync(
  weight: FloatArray,
  shape: readonly number[],
  options: SpectralNormalizeOptions = {},
): Promise<SpectralNormResult> {
  return withCallerStack(async () => runOneShotAsync(prepare(weight, shape, options, true)));
}
