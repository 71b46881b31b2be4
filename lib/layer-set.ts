// What SpectralNormalizer and SpectralNormBatch share: option checks, layer creation, argument checks for a step,
// and running steps through the engine. The two classes only name their arguments differently.
import type { FloatArray, PowerJob } from '../binding';
import { type BackendChoice, type ResolvedBackend, defaultThreads, resolveBackend } from './backends';
import { DeviceVectors, type DeviceWeights, buildDeviceJob } from './device';
import { type JobResults, type LayerState, OperationQueue, type RunParams, allocateResults, buildJob, finish, runAsync, runSync } from './engine';
import { matrixGeometry } from './layout';
import { randomSeed, startVectors } from './random';
import {
  type DType,
  type Targets,
  MAX_ITERATIONS,
  MAX_THREADS,
  checkBoolean,
  checkDim,
  checkDtype,
  checkInteger,
  checkKnownKeys,
  checkNonNegative,
  checkObject,
  checkSeed,
  checkShape,
  checkStartVector,
  describe,
} from './validate';

/** Options shared by SpectralNormalizer and SpectralNormBatch. */
export interface CommonOptions {
  /** Power iterations per training step (PyTorch's n_power_iterations). Default 1. */
  iterations?: number;
  /** PyTorch's eps: normalize(x) = x / max(‖x‖, eps), and σ ≤ eps leaves the weight as it is. Default 1e-12. */
  eps?: number;
  /** Default 'float32'. Weights, out, u and v all use it. */
  dtype?: DType;
  /** torch.nn.utils.spectral_norm's order (v first, then u) rather than the parametrization's. Default false. */
  legacy?: boolean;
  /** 'auto' (default), 'cuda', 'cpu' or 'js'. */
  backend?: BackendChoice;
  /** CPU threads; default: the cores this process may use. */
  threads?: number;
  /** The CUDA device of the cuda backend (default 0); only with backend 'cuda' or 'auto'. */
  device?: number;
}

const COMMON_KEYS = ['iterations', 'eps', 'dtype', 'legacy', 'backend', 'threads', 'device'] as const;

export interface Settings {
  iterations: number;
  eps: number;
  dtype: DType;
  legacy: boolean;
  threads: number;
  backend: ResolvedBackend;
}

/**
 * A constructor's options object: checked to be an object with no unknown keys (the common ones plus `ownKeys`),
 * and its common settings ('auto' picks the backend by the size of `shapes`). Returns the settings and the object,
 * for the caller's own keys.
 */
export function checkConstructorOptions(
  name: string,
  options: unknown,
  ownKeys: readonly string[],
  shapes: readonly unknown[],
): { settings: Settings; opts: Record<string, unknown> } {
  const opts = checkObject(name, options);
  checkKnownKeys(name, opts, [...COMMON_KEYS, ...ownKeys]);
  return { settings: checkSettings(name, opts, totalElements(shapes)), opts };
}

/** The weight elements of these shapes, or undefined while any is malformed (its own check reports that). */
export function totalElements(shapes: readonly unknown[]): number | undefined {
  let total = 0;
  for (const shape of shapes) {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
    total += (shape as number[]).reduce((a, b) => a * b, 1);
  }
  return total;
}

function checkSettings(name: string, options: Record<string, unknown>, elements: number | undefined): Settings {
  return {
    iterations: checkInteger(`${name}.iterations`, options.iterations, 1, MAX_ITERATIONS, 1),
    eps: checkNonNegative(`${name}.eps`, options.eps, 1e-12),
    dtype: checkDtype(`${name}.dtype`, options.dtype),
    legacy: checkBoolean(`${name}.legacy`, options.legacy, false),
    threads: checkInteger(`${name}.threads`, options.threads, 1, MAX_THREADS, defaultThreads()),
    backend: resolveBackend(`${name}.backend`, options.backend, `${name}.device`, options.device, elements),
  };
}

/** fromState's own options: where and how to run, checked under their own names before the state is. */
export function checkRuntimeOptions(options: unknown): Pick<CommonOptions, 'backend' | 'threads' | 'device'> {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['backend', 'threads', 'device']);
  resolveBackend('options.backend', opts.backend, 'options.device', opts.device);
  checkInteger('options.threads', opts.threads, 1, MAX_THREADS, 1);
  return opts as Pick<CommonOptions, 'backend' | 'threads' | 'device'>;
}

/** The common part of fromState: the state's format and version, checked before anything else. */
export function checkStateHeader(state: unknown, format: string, origin: string): Record<string, unknown> {
  const s = checkObject('state', state);
  if (s.format !== format || s.version !== 1) {
    throw new TypeError(`state must come from ${origin} (format '${format}', version 1)`);
  }
  return s;
}

/** step()'s options: `update` (training or eval mode) and `out`, still to be checked against the weights. */
export function checkStepOptions(options: unknown): { update: boolean; out: unknown } {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['update', 'out']);
  return { update: checkBoolean('options.update', opts.update, true), out: opts.out };
}

/** warmup()'s iteration count. */
export function checkWarmupIterations(iterations: unknown): number {
  return checkInteger('iterations', iterations, 1, MAX_ITERATIONS);
}

export interface Layer {
  shape: number[];
  dim: number;
  name?: string;
  state: LayerState;
  /** How errors name this layer's weight, e.g. "weights[3] (layer 'block1.conv1')". */
  label: string;
}

export interface LayerInit {
  shape?: unknown;
  dim?: unknown;
  u?: unknown;
  v?: unknown;
  seed?: unknown;
  name?: unknown;
}

/**
 * Checks one layer's description and makes its state. Errors name the shape `shapeName` and the other fields
 * `${prefix}.dim` and so on ("options.dim" for a normalizer, "layers[2].dim" for a batch).
 */
export function createLayer(
  shapeName: string,
  prefix: string,
  init: LayerInit,
  settings: Settings,
  seed: number | undefined,
  label: string,
): Layer {
  const at = (key: string) => `${prefix}.${key}`;
  const shape = checkShape(shapeName, init.shape);
  const dim = checkDim(at('dim'), init.dim, shape.length);
  if (init.name !== undefined && typeof init.name !== 'string') {
    throw new TypeError(`${at('name')} must be a string, got ${describe(init.name)}`);
  }
  const geometry = matrixGeometry(shape, dim, settings.legacy);
  const ownSeed = checkSeed(at('seed'), init.seed);
  const start = startVectors(ownSeed ?? seed ?? randomSeed(), geometry.uLength, geometry.vLength, settings.dtype);
  const u = init.u === undefined ? start.u : checkStartVector(at('u'), init.u, geometry.uLength, settings.dtype);
  const v = init.v === undefined ? start.v : checkStartVector(at('v'), init.v, geometry.vLength, settings.dtype);
  const name = init.name as string | undefined;
  return { shape, dim, name, state: { geometry, u, v }, label: name === undefined ? label : `${label} (layer '${name}')` };
}

/** The layers of a normalizer or batch, with their settings and the queue that orders their async calls. */
export class LayerSet {
  readonly queue: OperationQueue;
  /** u and v on the CUDA device, from the first device step on. */
  private deviceVectors: DeviceVectors | null = null;
  /** Reused by every host job: the queue and assertIdle keep this set's calls from overlapping. */
  private readonly results: JobResults;

  constructor(
    owner: string,
    readonly layers: Layer[],
    readonly settings: Settings,
  ) {
    this.queue = new OperationQueue(owner);
    this.results = allocateResults(layers.length);
  }

  private params(iterations: number): RunParams {
    const { dtype, eps, legacy, threads } = this.settings;
    return { dtype, iterations, tolerance: -1, eps, legacy, threads };
  }

  private label = (i: number) => this.layers[i].label;

  /** Power iterations for a step: the configured number in training mode, none in eval mode. */
  stepIterations(update: boolean): number {
    return update ? this.settings.iterations : 0;
  }

  /** Brings the host's u and v up to date when a device step changed them last. */
  syncVectorsToHost(): void {
    this.deviceVectors?.toHost();
  }

  /** Runs `iterations` power iterations (0: eval mode) and divides into targets.outs. Returns σ per layer. */
  run(targets: Targets, iterations: number): Float64Array {
    this.syncVectorsToHost();
    const job = buildJob(this.layers.map((l) => l.state), targets.weights, targets.outs, this.params(iterations), this.results);
    const sigma = runSync(this.settings.backend, job, this.label).sigma.slice();
    this.deviceVectors?.hostChanged();
    return sigma;
  }

  async runAsync(targets: Targets, iterations: number): Promise<Float64Array> {
    this.syncVectorsToHost();
    const job = buildJob(this.layers.map((l) => l.state), targets.weights, targets.outs, this.params(iterations), this.results);
    const sigma = (await runAsync(this.settings.backend, job, this.label)).sigma.slice();
    this.deviceVectors?.hostChanged();
    return sigma;
  }

  private deviceJob(weights: DeviceWeights, iterations: number) {
    const backend = this.settings.backend;
    this.deviceVectors ??= new DeviceVectors(backend, this.settings.dtype, this.layers);
    this.deviceVectors.toDevice();
    return buildDeviceJob(this.layers, weights, this.deviceVectors, { ...this.params(iterations), device: backend.device ?? 0 });
  }

  /** A step on weights kept on the CUDA device: divided there in place; u and v stay on the device. */
  runDevice(weights: DeviceWeights, iterations: number): Float64Array {
    const job = this.deviceJob(weights, iterations);
    const ok = this.settings.backend.native!.run(job);
    const sigma = finish(job as unknown as PowerJob, ok, this.label).sigma;
    this.deviceVectors!.deviceChanged();
    return sigma;
  }

  async runDeviceAsync(weights: DeviceWeights, iterations: number): Promise<Float64Array> {
    const job = this.deviceJob(weights, iterations);
    const ok = await this.settings.backend.native!.runAsync(job);
    const sigma = finish(job as unknown as PowerJob, ok, this.label).sigma;
    this.deviceVectors!.deviceChanged();
    return sigma;
  }
}

/** Plain numbers, for JSON. */
export function toNumbers(array: FloatArray): number[] {
  return Array.from(array);
}
