// What SpectralNormalizer and SpectralNormBatch share once their options are checked (lib/options.ts): each layer's
// creation from its description, and the jobs of their steps, which the classes' cores (lib/engine.ts) yield and
// drive sync or async. The two classes only name their arguments differently.
import type { ConvOperator, DevicePowerJob, FloatArray, PowerJob } from '../binding';
import { checkOperator, inputLength, outputSize } from './conv/geometry';
import { DeviceVectors, type DeviceWeights } from './device';
import {
  type Core,
  type Job,
  type JobResults,
  type LayerState,
  type RunParams,
  allocateResults,
  buildJob,
  finish,
  isDeviceJob,
  runAsync,
  runSync,
} from './engine';
import { type MatrixGeometry, matrixGeometry } from './layout';
import { OperationQueue } from './operation-queue';
import type { Settings } from './options';
import { randomSeed, startVectors } from './random';
import { type Targets, checkDim, checkSeed, checkShape, checkStartVector, describe } from './validate';

export interface Layer {
  shape: number[];
  dim: number;
  name?: string;
  /** A convolution layer's operator: u is output-shaped, v input-shaped. */
  operator?: ConvOperator;
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
  operator?: unknown;
}

/** A convolution operator read as a matrix: 1 × (output) × (input); u and v are the output and input vectors. */
function operatorGeometry(op: ConvOperator): MatrixGeometry {
  const rows = outputSize(op);
  const cols = inputLength(op);
  return { outer: 1, rows, inner: cols, cols, vectorNorm: false, uLength: rows, vLength: cols };
}

/**
 * Checks one layer's description and makes its state. Errors name the shape `shapeName` and the other fields
 * `${prefix}.dim` and so on ("options.dim" for a normalizer, "layers[2].dim" for a batch).
 */
export function createLayer(
  shapeName: string,
  prefix: string,
  init: LayerInit,
  settings: Pick<Settings, 'dtype' | 'legacy'>,
  seed: number | undefined,
  label: string,
): Layer {
  const at = (key: string) => `${prefix}.${key}`;
  const shape = checkShape(shapeName, init.shape);
  const dim = checkDim(at('dim'), init.dim, shape.length);
  if (init.name !== undefined && typeof init.name !== 'string') {
    throw new TypeError(`${at('name')} must be a string, got ${describe(init.name)}`);
  }
  const operator = init.operator === undefined ? undefined : checkOperator(at('operator'), init.operator, shape, shapeName);
  if (operator && dim !== 0) throw new RangeError(`${at('dim')} must be 0 (or absent) with an operator, got ${String(init.dim)}`);
  const geometry = operator ? operatorGeometry(operator) : matrixGeometry(shape, dim, settings.legacy);
  const ownSeed = checkSeed(at('seed'), init.seed);
  const start = startVectors(ownSeed ?? seed ?? randomSeed(), geometry.uLength, geometry.vLength, settings.dtype);
  const u = init.u === undefined ? start.u : checkStartVector(at('u'), init.u, geometry.uLength, settings.dtype);
  const v = init.v === undefined ? start.v : checkStartVector(at('v'), init.v, geometry.vLength, settings.dtype);
  const name = init.name as string | undefined;
  const state: LayerState = operator ? { geometry, operator, u, v } : { geometry, u, v };
  return { shape, dim, name, operator, state, label: name === undefined ? label : `${label} (layer '${name}')` };
}

/** The layers of a normalizer or batch, with their settings and the queue that orders their async calls. */
export class LayerSet {
  readonly queue: OperationQueue;
  /** u and v on the CUDA device, from the first device step on. */
  private deviceVectors: DeviceVectors | null = null;
  /** Each layer's host state, in order. */
  private readonly states: LayerState[];
  /** Reused by every job: the queue and assertIdle keep this set's calls from overlapping. */
  private readonly results: JobResults;

  constructor(
    owner: string,
    readonly layers: Layer[],
    readonly settings: Settings,
  ) {
    this.queue = new OperationQueue(owner);
    this.states = layers.map((l) => l.state);
    this.results = allocateResults(layers.length);
  }

  private params(iterations: number): RunParams {
    const { dtype, eps, precision, legacy, threads } = this.settings;
    return { dtype, iterations, tolerance: -1, eps, precision, legacy, threads };
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

  /** Runs a core now, as `method`; throws while an async operation of this set is in flight. */
  runSync<R>(method: string, core: Core<R>): R {
    this.queue.assertIdle(method);
    return runSync(this.settings.backend, core);
  }

  /** Runs a core once this set's earlier async operations have settled; rejections carry the caller's stack. */
  runAsync<R>(core: Core<R>): Promise<R> {
    return this.queue.enqueue(() => runAsync(this.settings.backend, core));
  }

  // A step is one job: a core builds it with hostJob or deviceJob, yields it, and gets σ from finishStep. σ is this
  // set's own array, which the next job overwrites: a core copies what it returns.

  /** `iterations` power iterations (0: eval mode) on host arrays, W/σ into targets.outs. */
  hostJob(targets: Targets, iterations: number): PowerJob {
    this.syncVectorsToHost();
    return buildJob(this.states, targets.weights, targets.outs, this.params(iterations), this.results);
  }

  /** A step on weights kept on the CUDA device: divided there in place, with u and v kept there too. */
  deviceJob(weights: DeviceWeights, iterations: number): DevicePowerJob {
    this.deviceVectors ??= new DeviceVectors(weights.backend, this.settings.dtype, this.states);
    this.deviceVectors.toDevice();
    const slices = weights.slices();
    const job = buildJob(this.deviceVectors.states, slices, slices, this.params(iterations), this.results);
    return { ...job, device: weights.backend.device };
  }

  /**
   * σ per layer, or the RangeError of a non-finite layer (nothing modified then). The side the job ran on, host or
   * device, now holds the newer u and v.
   */
  finishStep(job: Job, allFinite: boolean): Float64Array {
    const sigma = finish(job, allFinite, this.label).sigma;
    if (isDeviceJob(job)) this.deviceVectors?.deviceChanged();
    else this.deviceVectors?.hostChanged();
    return sigma;
  }
}

/** Plain numbers, for JSON. */
export function toNumbers(array: FloatArray): number[] {
  return Array.from(array);
}
