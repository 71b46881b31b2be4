// The one place where the API meets a backend: builds a PowerJob from layer states, runs it sync or async, and turns
// the per-layer outcome into results or errors. SpectralNormalizer, SpectralNormBatch and the one-shot functions all
// go through here, which is why a batch of one gives the same bits as a normalizer.
import type { FloatArray, PowerJob } from '../binding';
import type { ResolvedBackend } from './backends';
import { LayerStatus } from './codes';
import type { MatrixGeometry } from './layout';
import type { DType } from './validate';

/** One layer's persistent state: its matrix geometry and its u and v (owned by the library, dtype arrays). */
export interface LayerState {
  geometry: MatrixGeometry;
  u: FloatArray;
  v: FloatArray;
}

export interface RunParams {
  dtype: DType;
  iterations: number;
  /** < 0: fixed (PyTorch) mode; ≥ 0: converge mode. */
  tolerance: number;
  eps: number;
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
 * A job over the layers. `results` may be reused from call to call by an owner whose calls never overlap: allocating
 * four typed arrays per call (which the native side then has to materialise) was a large part of a tiny step's cost.
 */
export function buildJob(
  layers: readonly LayerState[],
  weights: readonly FloatArray[],
  outs: readonly (FloatArray | null)[],
  params: RunParams,
  results: JobResults = allocateResults(layers.length),
): PowerJob {
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
    })),
    iterations: params.iterations,
    tolerance: params.tolerance,
    eps: params.eps,
    legacy: params.legacy,
    threads: params.threads,
    ...results,
  };
}

/** Throws the RangeError for a non-finite layer, or returns the job's results. */
export function finish(job: PowerJob, allFinite: boolean, label: (index: number) => string): RunResult {
  if (!allFinite) {
    const bad = job.status.findIndex((s) => s === LayerStatus.NonFinite);
    throw new RangeError(
      `${label(bad)} contains NaN or Infinity, or overflowed during power iteration; nothing was modified`,
    );
  }
  return { sigma: job.sigma, iterationsRun: job.iterationsRun, converged: job.converged };
}

/** Runs a job; false when some layer was non-finite (and nothing was modified). */
export function execute(backend: ResolvedBackend, job: PowerJob): boolean {
  return backend.impl.run(job);
}

export function executeAsync(backend: ResolvedBackend, job: PowerJob): Promise<boolean> {
  return backend.impl.runAsync(job);
}

export function runSync(backend: ResolvedBackend, job: PowerJob, label: (index: number) => string): RunResult {
  return finish(job, execute(backend, job), label);
}

export async function runAsync(backend: ResolvedBackend, job: PowerJob, label: (index: number) => string): Promise<RunResult> {
  return finish(job, await executeAsync(backend, job), label);
}

/**
 * Runs an async operation and, if it rejects, gives the error the stack of the code that started it: a rejection
 * from the native worker or from a queued operation otherwise shows only library frames.
 */
export function withCallerStack<T>(operation: () => Promise<T>): Promise<T> {
  const trace = new Error();
  return operation().catch((error: unknown) => {
    if (error instanceof Error && trace.stack) {
      const frames = trace.stack.split('\n').slice(2).join('\n');
      error.stack = `${error.name}: ${error.message}\n${frames}`;
    }
    throw error;
  });
}

/**
 * Orders the async operations of one normalizer or batch: each starts when the previous one settled, in call order,
 * so their results equal running them one by one. Sync calls while one is in flight would race it, so they throw.
 */
export class OperationQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private inFlight = 0;

  constructor(private readonly owner: string) {}

  assertIdle(method: string): void {
    if (this.inFlight > 0) {
      throw new Error(`${this.owner}.${method}() was called while an async operation is in flight; await it first`);
    }
  }

  enqueue<T>(operation: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const result = withCallerStack(() => this.tail.then(operation));
    const settled = result.then(
      () => this.inFlight--,
      () => this.inFlight--,
    );
    this.tail = settled;
    return result;
  }
}
