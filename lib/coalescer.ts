// SpectralNormCoalescer: gathers independent one-shot requests (spectralNormalize / spectralNorm) that arrive close
// together and runs them as one batched backend call through the engine. Each layer of a batched job gets the same
// bits as a job of its own for the same backend and thread count, so with a pinned backend every caller gets exactly
// what its own call would give. Under 'auto' the batch is the job: the cost model picks its backend, which may differ
// from what a request alone would get (backends agree to rounding, not to the bit).
import type { FloatArray } from '../binding';
import {
  type BackendChoice,
  type BackendOption,
  type ResolvedBackend,
  checkBackendOption,
  defaultThreads,
  resolveBackend,
} from './backends';
import { ErrorCode, LayerStatus } from './codes';
import { buildJob, executeAsync } from './engine';
import {
  type Prepared,
  type SpectralNormOptions,
  type SpectralNormResult,
  certifyBeforeRun,
  convergeJob,
  prepare,
  result,
  runOneShotAsync,
} from './oneshot';
import { withCallerStack } from './operation-queue';
import { MAX_THREADS, checkInteger, checkKnownKeys, checkObject } from './validate';

/** SpectralNormCoalescer's options: when a batch goes, how many requests may wait or run, and where they run. */
export interface SpectralNormCoalescerOptions {
  /** Dispatch as soon as this many requests wait. Default 64. */
  maxBatchSize?: number;
  /** Dispatch this many milliseconds after the first waiting request arrived, batch full or not. Default 1. */
  maxDelayMs?: number;
  /** Requests that may wait at once; beyond it a request is rejected with code ErrorCode.QueueFull. Default 4096. */
  maxQueue?: number;
  /** Batches running at once. Default 1: the CPU backend spreads one batch over every thread it is given. */
  maxInFlight?: number;
  /** 'auto' (default), 'cuda', 'cpu' or 'js', for every request. */
  backend?: BackendChoice;
  /** CPU threads for each batch (and so for each request); default: the cores this process may use. */
  threads?: number;
}

/** A request's own options: those of spectralNorm, less backend and threads, which the coalescer sets. */
export type CoalescedNormOptions = Omit<SpectralNormOptions, 'backend' | 'threads'>;
/** A normalize request's own options: a norm request's, plus where W/σ goes. */
export interface CoalescedNormalizeOptions extends CoalescedNormOptions {
  /** Receives W/σ; without it the weight is divided in place. */
  out?: FloatArray;
}

/** Counts since the coalescer was made, from stats(). */
export interface SpectralNormCoalescerStats {
  /** Requests accepted (validated and queued). */
  requests: number;
  /** Requests rejected because the queue was full. */
  rejected: number;
  /** Backend calls made for batches. */
  batches: number;
  /** The most requests one batch has held. */
  largestBatch: number;
}

interface Span {
  buffer: ArrayBufferLike;
  begin: number;
  end: number;
  writes: boolean;
}

interface Request {
  prepared: Prepared;
  /** Requests with the same key can share one job: same dtype, tolerance, iteration limit, eps, precision and device. */
  key: string;
  spans: Span[];
  resolve: (value: SpectralNormResult) => void;
  reject: (error: unknown) => void;
}

function codedError(code: ErrorCode, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function spansOf(prepared: Prepared): Span[] {
  const layer = prepared.job.layers[0];
  const span = (array: FloatArray, writes: boolean): Span => ({
    buffer: array.buffer,
    begin: array.byteOffset,
    end: array.byteOffset + array.byteLength,
    writes,
  });
  const spans = [span(layer.weight, layer.out === layer.weight)];
  if (layer.out !== null && layer.out !== layer.weight) spans.push(span(layer.out, true));
  return spans;
}

function conflicts(a: readonly Span[], b: readonly Span[]): boolean {
  return a.some((x) => b.some((y) => x.buffer === y.buffer && (x.writes || y.writes) && x.begin < y.end && y.begin < x.end));
}

const OWN_KEYS = ['maxBatchSize', 'maxDelayMs', 'maxQueue', 'maxInFlight', 'backend', 'threads'];

/**
 * Gathers independent one-shot requests (normalize, norm) that arrive within maxDelayMs of each other and runs them
 * as one batched backend call: for servers that get many small requests. With a pinned backend each request gets
 * exactly what its own spectralNormalizeAsync or spectralNormAsync call would; under 'auto' the batch is the job
 * the cost model decides for. Requests reject with code ErrorCode.QueueFull or ErrorCode.Closed when refused.
 */
export class SpectralNormCoalescer {
  private readonly maxBatchSize: number;
  private readonly maxDelayMs: number;
  private readonly maxQueue: number;
  private readonly maxInFlight: number;
  /** The backend option and threads every request gets, checked once. */
  private readonly preset: { option: BackendOption; threads: number };
  private waiting: Request[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = 0;
  /** The arrays of the batches in flight: a waiting request that overlaps one of their writes waits for it. */
  private readonly inFlight = new Set<readonly Span[]>();
  private closed = false;
  private idle: (() => void)[] = [];
  private readonly counts: SpectralNormCoalescerStats = { requests: 0, rejected: 0, batches: 0, largestBatch: 0 };

  /** Throws a TypeError or RangeError that names the option (`options.maxBatchSize`, ...) when one is wrong. */
  constructor(options: SpectralNormCoalescerOptions = {}) {
    const opts = checkObject('options', options);
    checkKnownKeys('options', opts, OWN_KEYS);
    this.maxBatchSize = checkInteger('options.maxBatchSize', opts.maxBatchSize, 1, 1 << 20, 64);
    const delay = opts.maxDelayMs ?? 1;
    if (typeof delay !== 'number' || !(delay >= 0 && delay <= 60_000)) {
      throw new RangeError(`options.maxDelayMs must be a number from 0 to 60000, got ${String(delay)}`);
    }
    this.maxDelayMs = delay;
    this.maxQueue = checkInteger('options.maxQueue', opts.maxQueue, 1, 2 ** 31 - 1, 4096);
    this.maxInFlight = checkInteger('options.maxInFlight', opts.maxInFlight, 1, 1024, 1);
    this.preset = {
      threads: checkInteger('options.threads', opts.threads, 1, MAX_THREADS, defaultThreads()),
      option: checkBackendOption('options.backend', opts.backend),
    };
  }

  /** The backend option: requests run there, or under 'auto' each batch where the cost model predicts it finishes first. */
  get backend(): BackendChoice {
    return this.preset.option.choice;
  }

  /** Requests waiting to be dispatched. */
  get pending(): number {
    return this.waiting.length;
  }

  /** A copy of the counts so far. */
  stats(): SpectralNormCoalescerStats {
    return { ...this.counts };
  }

  /**
   * spectralNormalizeAsync, coalesced: σ to a tolerance, then W/σ into `out` or in place. Resolves with exactly what
   * spectralNormalizeAsync(weight, shape, { ...options, backend, threads }) gives.
   */
  normalize(weight: FloatArray, shape: readonly number[], options: CoalescedNormalizeOptions = {}): Promise<SpectralNormResult> {
    return this.submit(weight, shape, options, true);
  }

  /** spectralNormAsync, coalesced: σ only, the weight untouched. */
  norm(weight: FloatArray, shape: readonly number[], options: CoalescedNormOptions = {}): Promise<SpectralNormResult> {
    return this.submit(weight, shape, options, false);
  }

  /** Dispatches the waiting requests now, without waiting for the window to close. */
  flush(): void {
    this.dispatch();
  }

  /** Refuses new requests, dispatches those waiting, and resolves when every request has settled. */
  close(): Promise<void> {
    this.closed = true;
    this.dispatch();
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private submit(weight: unknown, shape: unknown, options: unknown, divide: boolean): Promise<SpectralNormResult> {
    return withCallerStack(async () => {
      if (this.closed) throw codedError(ErrorCode.Closed, 'SpectralNormCoalescer is closed');
      const opts = checkObject('options', options);
      for (const key of ['backend', 'threads']) {
        if (opts[key] !== undefined) {
          throw new TypeError(`options.${key} is set on the SpectralNormCoalescer, not per request`);
        }
      }
      if (this.waiting.length >= this.maxQueue) {
        this.counts.rejected++;
        throw codedError(ErrorCode.QueueFull, `SpectralNormCoalescer queue is full (${this.maxQueue} requests waiting); retry later`);
      }
      const prepared = prepare(weight, shape, opts, divide, this.preset);
      const { dtype, tolerance, iterations, eps, precision } = prepared.job;
      this.counts.requests++;
      return new Promise<SpectralNormResult>((resolve, reject) => {
        this.waiting.push({
          prepared,
          key: `${dtype}:${tolerance}:${iterations}:${eps}:${precision}:${prepared.option.cuda?.device ?? '-'}`,
          spans: spansOf(prepared),
          resolve,
          reject,
        });
        if (this.waiting.length >= this.maxBatchSize) this.dispatch();
        else if (this.timer === null) this.timer = setTimeout(() => this.dispatch(), this.maxDelayMs);
      });
    });
  }

  private dispatch(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.running < this.maxInFlight && this.waiting.length > 0) {
      const batch = this.take();
      // Everything waiting overlaps a batch in flight: it starts when that batch settles (dispatch runs again then).
      if (batch.length === 0) break;
      const spans = batch.flatMap((request) => request.spans);
      this.inFlight.add(spans);
      this.running++;
      this.counts.batches++;
      this.counts.largestBatch = Math.max(this.counts.largestBatch, batch.length);
      void this.runBatch(batch).finally(() => {
        this.inFlight.delete(spans);
        this.running--;
        // Those that arrived meanwhile have waited for a whole batch already: no further window.
        if (this.waiting.length > 0) this.dispatch();
        else if (this.running === 0) this.idle.splice(0).forEach((resolve) => resolve());
      });
    }
  }

  /**
   * The next batch, in arrival order: requests with the first one's key, up to maxBatchSize. A request whose arrays
   * overlap a write of an earlier waiting request or of a batch in flight (or whose writes overlap their arrays) waits
   * for a later batch, so requests on shared memory give the results of running them one by one, whatever maxInFlight.
   */
  private take(): Request[] {
    const key = this.waiting[0].key;
    const taken: Request[] = [];
    const left: Request[] = [];
    const seen: Span[] = [...this.inFlight].flat();
    for (const request of this.waiting) {
      if (taken.length < this.maxBatchSize && request.key === key && !conflicts(request.spans, seen)) taken.push(request);
      else left.push(request);
      seen.push(...request.spans);
    }
    this.waiting = left;
    return taken;
  }

  /** One job for the batch; every request settles on its own outcome. */
  private async runBatch(batch: Request[]): Promise<void> {
    if (batch.length <= 1) {
      if (batch.length === 1) await this.runAlone(batch[0]);
      return;
    }
    const first = batch[0].prepared;
    const { dtype, iterations, tolerance, eps, precision, threads } = first.job;
    batch.forEach(({ prepared }) => certifyBeforeRun(prepared));
    const layers = batch.map(({ prepared }) => ({ geometry: prepared.geometry, u: prepared.job.layers[0].u, v: prepared.job.layers[0].v }));
    const job = buildJob(
      layers,
      batch.map(({ prepared }) => prepared.job.layers[0].weight),
      batch.map(({ prepared }) => prepared.job.layers[0].out),
      { dtype, iterations, tolerance, eps, precision, legacy: false, threads },
    );
    const backend = this.batchBackend(batch);
    let allFinite: boolean;
    try {
      allFinite = await executeAsync(backend, job);
    } catch {
      // Out of memory for the batch's scratch, or an array detached since it was queued: nothing was modified, so
      // each request runs alone and meets its own outcome.
      await Promise.all(batch.map((request) => this.runAlone(request)));
      return;
    }
    if (!allFinite) {
      // Nothing was modified. The non-finite layers run alone (a finite float64 weight of subnormals gets the
      // one-shot's rescaled retry; the others reject with their RangeError); the rest run again as a batch.
      const bad = batch.filter((_, i) => job.status[i] === LayerStatus.NonFinite);
      const good = batch.filter((_, i) => job.status[i] !== LayerStatus.NonFinite);
      if (bad.length === 0) {
        await Promise.all(batch.map((request) => this.runAlone(request)));
        return;
      }
      await Promise.all([...bad.map((request) => this.runAlone(request)), this.runBatch(good)]);
      return;
    }
    batch.forEach(({ prepared, resolve }, i) => {
      const own = prepared.job;
      own.sigma[0] = job.sigma[i];
      own.status[0] = job.status[i];
      own.iterationsRun[0] = job.iterationsRun[i];
      own.converged[0] = job.converged[i];
      resolve(result({ ...prepared, backend }, true));
    });
  }

  /**
   * A pinned backend; under 'auto', the one the cost model picks for the whole batch (a request alone picks its own).
   * A batch's requests share one CUDA device (it is in their key), the coalescer's or the one they named.
   */
  private batchBackend(batch: readonly Request[]): ResolvedBackend {
    const { option } = batch[0].prepared;
    if (option.choice !== 'auto') return batch[0].prepared.backend;
    const { dtype, iterations, precision, threads } = batch[0].prepared.job;
    const geometries = batch.map(({ prepared }) => prepared.geometry);
    const divides = batch.map(({ prepared }) => prepared.job.layers[0].out !== null);
    return resolveBackend(option, convergeJob(geometries, dtype, precision, iterations, threads, divides));
  }

  private async runAlone(request: Request): Promise<void> {
    try {
      request.resolve(await runOneShotAsync(request.prepared));
    } catch (error) {
      request.reject(error);
    }
  }
}
