// spectralNorm and spectralNormalize: σ of one weight to a tolerance, with no state kept between calls.
import type { FloatArray, PowerJob } from '../binding';
import { type BackendName, type BackendOption, type ResolvedBackend, checkBackendOption, defaultThreads, resolveBackend } from './backends';
import type { CostedJob } from './cost-model';
import { type Core, buildJob, effectivePrecision, finish, runAsync, runSync } from './engine';
import { type MatrixGeometry, matrixGeometry } from './layout';
import { withCallerStack } from './operation-queue';
import { type CertifiedBounds, certifiedBounds } from './certify';
import { startVectors } from './random';
import { maxAbs, powerOfTwoScaling, scaledCopy } from './scaling';
import {
  MAX_ITERATIONS,
  MAX_THREADS,
  checkBoolean,
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

/** spectralNorm's options: how the weight is read as a matrix, when the iteration stops, and where it runs. */
export interface SpectralNormOptions {
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Stop once σ changes by at most tolerance·σ between iterations. Default 1e-6. */
  tolerance?: number;
  /** The most power iterations to run; the result's `converged` says whether the tolerance was met. Default 1000. */
  maxIterations?: number;
  /** Seed for the start vector. Default 0, so results are reproducible. */
  seed?: number;
  /** σ ≤ eps counts as a zero matrix: spectralNormalize then leaves the weight as it is. Default 0. */
  eps?: number;
  /** 'mixed' (default) or 'float64': how float32 products are summed (see CommonOptions.precision). */
  precision?: Precision;
  /** 'auto' (default: picked per call by the cost model), 'cuda', 'cpu' or 'js'. */
  backend?: 'auto' | 'cuda' | 'cpu' | 'js';
  /** CPU threads; default: the cores this process may use. */
  threads?: number;
  /** The CUDA device of the cuda backend (default 0). */
  device?: number;
  /**
   * Also return `lower` and `upper`, certified bounds on σ with rounding accounted for (lib/certify.ts): lower is the
   * norm ratio of an explicit vector, upper a proof that no singular value exceeds it. upper/lower − 1 ≤ 1e-6 even
   * when the top two singular values are within 0.1%. Costs O(min(m, n)²·max(m, n)). Default false.
   */
  certify?: boolean;
}

/** spectralNormalize's options: spectralNorm's, plus where W/σ goes. */
export interface SpectralNormalizeOptions extends SpectralNormOptions {
  /** Receives W/σ; without it the weight is divided in place. */
  out?: FloatArray;
}

/** What spectralNorm and spectralNormalize (and the coalescer's requests) resolve to. */
export interface SpectralNormResult {
  /** The largest singular value, as estimated. In the weight's dtype's precision. */
  sigma: number;
  /** The left singular vector estimate (length shape[dim]) in the weight's dtype; empty for a 1-D weight. */
  u: FloatArray;
  /** The right singular vector estimate (length: the other dimensions' product); empty for a 1-D weight. */
  v: FloatArray;
  /** Power iterations run. */
  iterations: number;
  /** Whether σ settled to the tolerance within maxIterations. */
  converged: boolean;
  /** The backend the call ran on: what 'auto' picked, under 'auto'. */
  backend: BackendName;
  /** With `certify`: lower ≤ true σ ≤ upper, certified (of the weight as given, before any division). */
  lower?: number;
  /** With `certify`: the certified upper bound on the true σ (see lower). */
  upper?: number;
}

const KEYS = ['dim', 'tolerance', 'maxIterations', 'seed', 'eps', 'precision', 'backend', 'threads', 'device', 'certify'];

/** One validated one-shot call, ready to run: its job (one layer), backend and start seed. */
export interface Prepared {
  job: PowerJob;
  backend: ResolvedBackend;
  /** The checked backend option (with its device) that `backend` was resolved from. */
  option: BackendOption;
  seed: number;
  geometry: MatrixGeometry;
  /** Whether to certify bounds on σ, and where they go once computed (before the job may divide the weight). */
  certify: boolean;
  bounds?: CertifiedBounds;
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
  const certify = checkBoolean('options.certify', opts.certify, false);
  // A device of its own is checked against the preset's backend, as a call of its own would be.
  const option =
    preset && opts.device === undefined
      ? preset.option
      : checkBackendOption('options.backend', preset ? preset.option.choice : opts.backend, 'options.device', opts.device);
  const geometry = matrixGeometry(shape, dim, false);
  const backend = resolveBackend(
    option,
    convergeJob([geometry], dtype, effectivePrecision({ precision, tolerance }), maxIterations, threads, [out !== null]),
  );
  const { u, v } = startVectors(seed, geometry.uLength, geometry.vLength, dtype);
  const job = buildJob([{ geometry, u, v }], [w], [out], {
    dtype,
    iterations: maxIterations,
    tolerance,
    eps,
    precision,
    legacy: false,
    threads,
  });
  return { job, backend, option, seed, geometry, certify };
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
  const scaled = scaledCopy(w, down);
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
    ...prepared.bounds,
  };
}

/** With `certify`, the bounds of the weight as given: before the job, which may divide it in place. */
export function certifyBeforeRun(prepared: Prepared): void {
  if (!prepared.certify || prepared.bounds !== undefined) return;
  const { weight } = prepared.job.layers[0];
  if (maxAbs(weight).nonFinite >= 0) return; // the job reports it
  prepared.bounds = certifiedBounds(prepared.backend, weight, prepared.geometry, prepared.job.threads);
}

/** The job, and when it failed on a finite weight, its rescaled retry. */
function* oneShotCore(prepared: Prepared): Core<SpectralNormResult> {
  certifyBeforeRun(prepared);
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

/**
 * spectralNorm, off the event loop on the native backends. Rejects with spectralNorm's errors, never throws
 * synchronously, and the rejection carries the caller's stack.
 */
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

/**
 * spectralNormalize, off the event loop on the native backends. Rejects with spectralNormalize's errors, never
 * throws synchronously, and the rejection carries the caller's stack.
 */
export function spectralNormalizeAsync(
  weight: FloatArray,
  shape: readonly number[],
  options: SpectralNormalizeOptions = {},
): Promise<SpectralNormResult> {
  return withCallerStack(async () => runOneShotAsync(prepare(weight, shape, options, true)));
}
