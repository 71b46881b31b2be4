// The one place where the API meets a backend: builds a job from layer states, runs it, and turns the per-layer
// outcome into results or errors. SpectralNormalizer, SpectralNormBatch, the one-shot functions and the coalescer
// all go through here, which is why a batch of one gives the same bits as a normalizer.
//
// Each operation is written once, as a core: a generator that yields the jobs it needs run and receives each one's
// outcome. runSync drives a core with the backend's run, runAsync with its runAsync, so the sync and async APIs
// share every line but the call.
// Core's Generator type, for consumers compiling with TypeScript's default lib (ES5).
/// <reference lib="es2015.generator" preserve="true" />
import type { ConvOperator, DevicePowerJob, DeviceSlice, FloatArray, NativeAddon, PowerJob } from '../binding';
import type { ResolvedBackend } from './backends';
import { LayerStatus } from './codes';
import type { MatrixGeometry } from './layout';
import type { DType, Precision } from './validate';

/**
 * One layer's persistent state: its matrix geometry and its u and v, as host arrays owned by the library, or as
 * their mirror in CUDA device memory (lib/device.ts).
 */
export interface LayerState<A extends FloatArray | DeviceSlice = FloatArray> {
  geometry: MatrixGeometry;
  /** A convolution layer's operator (u output-shaped, v input-shaped); absent for a matrix. */
  operator?: ConvOperator;
  u: A;
  v: A;
}

export interface RunParams {
  dtype: DType;
  iterations: number;
  /** < 0: fixed (PyTorch) mode; ≥ 0: converge mode. */
  tolerance: number;
  eps: number;
  precision: Precision;
  legacy: boolean;
  threads: number;
}

export interface RunResult {
  sigma: Float64Array;
  iterationsRun: Int32Array;
  converged: Uint8Array;
}

/** The arrays a backend writes a job's per-layer results into. */
export type JobResults = Pick<PowerJob, 'sigma' | 'status' | 'iterationsRun' | 'converged'>;

export function allocateResults(n: number): JobResults {
  return { sigma: new Float64Array(n), status: new Int32Array(n), iterationsRun: new Int32Array(n), converged: new Uint8Array(n) };
}

/**
 * A job over the layers, whose arrays are all host arrays or all device slices. `results` may be reused from call to
 * call by an owner whose calls never overlap: allocating four typed arrays per call (which the native side then has
 * to materialise) was a large part of a tiny step's cost.
 */
/**
 * Converge mode asking for a tolerance below this sums in float64 whatever the precision option says. 'mixed' sums
 * leave a float32 rounding noise of about 1e-8 to 1e-7 on σ from one iteration to the next, and a stopping rule of
 * |Δσ| ≤ tolerance·σ with a tolerance near that noise fires by chance while σ is still rising: at 1e-9, 31 of 8000
 * random 512×5 float32 matrices stopped more than 2e-6 low, against 2 of 8000 with float64 sums.
 */
export const MIXED_TOLERANCE_FLOOR = 1e-6;

/** The summation a job gets: 'mixed' only where its rounding cannot trip the convergence test. */
export function effectivePrecision(params: Pick<RunParams, 'precision' | 'tolerance'>): Precision {
  return params.tolerance >= 0 && params.tolerance < MIXED_TOLERANCE_FLOOR ? 'float64' : params.precision;
}

export function buildJob<A extends FloatArray | DeviceSlice>(
  layers: readonly LayerState<A>[],
  weights: readonly A[],
  outs: readonly (A | null)[],
  params: RunParams,
  results: JobResults = allocateResults(layers.length),
): PowerJob<A> {
  return {
    dtype: params.dtype,
    layers: layers.map((layer, i) => ({
      weight: weights[i],
      out: outs[i],
      u: layer.u,
      v: layer.v,
      outer: layer.geometry.outer,
      rows: layer.geometry.rows,
      inner: layer.geometry.inner,
      vectorNorm: layer.geometry.vectorNorm,
      ...(layer.operator ? { operator: layer.operator } : {}),
    })),
    iterations: params.iterations,
    tolerance: params.tolerance,
    eps: params.eps,
    precision: effectivePrecision(params),
    legacy: params.legacy,
    threads: params.threads,
    ...results,
  };
}

/** Throws the RangeError for a non-finite layer, or returns the job's results. */
export function finish(job: JobResults, allFinite: boolean, label: (index: number) => string): RunResult {
  if (!allFinite) {
    const bad = job.status.findIndex((s) => s === LayerStatus.NonFinite);
    throw new RangeError(`${label(bad)} contains NaN or Infinity, or overflowed during power iteration; nothing was modified`);
  }
  return { sigma: job.sigma, iterationsRun: job.iterationsRun, converged: job.converged };
}

/** A job on host arrays, or one on a CUDA device's memory (device slices, `device` set). */
export type Job = PowerJob | DevicePowerJob;

/** An operation written once for the sync and async APIs: it yields each job and receives whether all was finite. */
export type Core<R> = Generator<Job, R, boolean>;

/** Runs a job; false when some layer was non-finite (and nothing was modified). */
export function execute(backend: ResolvedBackend, job: Job): boolean {
  return isDeviceJob(job) ? deviceRunner(backend).run(job) : backend.impl.run(job);
}

export function executeAsync(backend: ResolvedBackend, job: Job): Promise<boolean> {
  return isDeviceJob(job) ? deviceRunner(backend).runAsync(job) : backend.impl.runAsync(job);
}

export function isDeviceJob(job: Job): job is DevicePowerJob {
  return job.device !== undefined;
}

/** A job for a CUDA device goes to the addon as it is: on the cuda backend, or the one 'auto' keeps for device jobs. */
function deviceRunner(backend: ResolvedBackend): NativeAddon {
  const cuda = backend.name === 'cuda' ? backend : backend.cuda;
  if (cuda === null) throw new Error(`a job on CUDA device memory cannot run on the ${backend.name} backend`);
  return cuda.native;
}

/** Runs a core to its end now, each job with backend.run. */
export function runSync<R>(backend: ResolvedBackend, core: Core<R>): R {
  let step = core.next();
  while (!step.done) step = core.next(execute(backend, step.value));
  return step.value;
}

/** The same off the event loop: each job with backend.runAsync. */
export async function runAsync<R>(backend: ResolvedBackend, core: Core<R>): Promise<R> {
  let step = core.next();
  while (!step.done) step = core.next(await executeAsync(backend, step.value));
  return step.value;
}
