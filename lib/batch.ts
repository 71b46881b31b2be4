// SpectralNormBatch: many layers of any shapes, stepped together in one backend call.
import type { FloatArray } from '../binding';
import { type BackendName, deviceBackend } from './backends';
import { DeviceWeights } from './device';
import { type ConvOperatorOptions, operatorOptions } from './conv/geometry';
import type { Core, Job } from './engine';
import { type Layer, LayerSet, createLayer, toNumbers } from './layer-set';
import {
  type CommonOptions,
  checkConstructorOptions,
  checkRuntimeOptions,
  checkStateHeader,
  checkStepOptions,
  checkWarmupIterations,
  ConstructorHandoff,
  resolveSettings,
} from './options';
import {
  type DType,
  type Precision,
  type Targets,
  checkTargets,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkSeed,
  describe,
} from './validate';

/** One layer of a SpectralNormBatch (or of autoBackend's job): its shape, and optionally dim, u, v, seed and name. */
export interface LayerSpec {
  /** The weight's shape; the weight itself is row-major, as PyTorch lays it out. */
  shape: readonly number[];
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Start u (length shape[dim]), copied: e.g. a PyTorch model's weight_u or _u. Default: drawn from the seed. */
  u?: ArrayLike<number>;
  /** Start v (length: the other dimensions' product), copied: e.g. weight_v or _v. Default: drawn from the seed. */
  v?: ArrayLike<number>;
  /** Seed for this layer's start vectors; default: the batch's seed plus the layer's index. */
  seed?: number;
  /** Used in error messages. */
  name?: string;
  /** "Real SN": σ of the convolution on its input size (see SpectralNormalizerOptions.operator). */
  operator?: ConvOperatorOptions;
}

/** SpectralNormBatch's options: CommonOptions, plus the seed of every layer's start vectors. */
export interface SpectralNormBatchOptions extends CommonOptions {
  /** Layer i draws its start vectors from seed + i unless it has its own; default: random. */
  seed?: number;
}

/** SpectralNormBatch.step's options: training or eval mode, and where each layer's W/σ goes. */
export interface BatchStepOptions {
  /** true (default): PyTorch's training mode, run the power iterations and update u and v. false: eval mode. */
  update?: boolean;
  /** One array per layer to receive W/σ; without it the weights are divided in place. */
  out?: readonly FloatArray[];
}

/** A SpectralNormBatch as plain JSON-serialisable data, from state(); SpectralNormBatch.fromState restores it. */
export interface SpectralNormBatchState {
  /** What fromState checks the object is. */
  format: 'spectral-norm.batch';
  /** The format's version. */
  version: 1;
  /** Power iterations per training step (n_power_iterations). */
  iterations: number;
  /** PyTorch's eps. */
  eps: number;
  /** The dtype of the weights, `out`, u and v. */
  dtype: DType;
  /** Absent in states saved before the option existed: they restore as 'mixed', the default. */
  precision?: Precision;
  /** torch.nn.utils.spectral_norm's order (v first, then u). */
  legacy: boolean;
  /** Each layer's shape, dim (from 0), name when it has one, operator when it is a convolution, u and v. */
  layers: { shape: number[]; dim: number; name?: string; operator?: ConvOperatorOptions; u: number[]; v: number[] }[];
}

export const LAYER_KEYS = ['shape', 'dim', 'u', 'v', 'seed', 'name', 'operator'];

/** How constructor errors name the arguments: fromState names them after the state object. */
interface Naming {
  layers: string;
  options: string;
}

/** fromState's Naming, handed to the constructor it calls. */
const restoreNaming = new ConstructorHandoff<Naming>();

/**
 * Many layers of any shapes, u and v kept for each, stepped together: one backend call per step. Each layer gets the
 * same bits as a SpectralNormalizer of its own on the same backend and thread count; a step is all or nothing.
 */
export class SpectralNormBatch {
  private readonly set: LayerSet;

  /**
   * Checks the layers and options and draws or copies every layer's start vectors (layer i from `options.seed` + i
   * unless it has its own); 'auto' picks the backend here, for a training step on all the layers. Throws a TypeError
   * or RangeError that names the argument (`layers[2].shape`, `options.seed`, ...).
   */
  constructor(layers: readonly LayerSpec[], options: SpectralNormBatchOptions = {}) {
    const naming = restoreNaming.take();
    const names = naming ?? { layers: 'layers', options: 'options' };
    const operators = Array.isArray(layers) && layers.some((l: unknown) => (l as { operator?: unknown } | null)?.operator !== undefined);
    const { settings, opts } = checkConstructorOptions(names.options, options, ['seed'], operators);
    const seed = checkSeed(`${names.options}.seed`, opts.seed);
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new TypeError(
        `${names.layers} must be a non-empty array of { shape, dim?, u?, v?, seed?, name?, operator? }, got ${describe(layers)}`,
      );
    }
    if (seed !== undefined && !Number.isSafeInteger(seed + layers.length)) {
      throw new RangeError(`${names.options}.seed leaves no room for one seed per layer, got ${seed}`);
    }
    const built = layers.map((spec: unknown, i) => {
      const at = `${names.layers}[${i}]`;
      if (spec === undefined) throw new TypeError(`${at} must be an object, got undefined`);
      const init = checkObject(at, spec);
      checkKnownKeys(at, init, LAYER_KEYS);
      const layerSeed = seed === undefined ? undefined : seed + i;
      return createLayer(`${at}.shape`, at, init, settings, layerSeed, `weights[${i}]`);
    });
    this.set = new LayerSet(
      'SpectralNormBatch',
      built,
      resolveSettings(
        settings,
        built.map((l) => l.state.geometry),
        operators,
      ),
    );
  }

  /** Number of layers. */
  get length(): number {
    return this.set.layers.length;
  }

  /** The backend this batch's steps on host arrays run on; steps on DeviceWeights always run on cuda. */
  get backend(): BackendName {
    return this.set.settings.backend.name;
  }

  /** The type every weight, `out`, u and v has: 'float32' (default) or 'float64'. */
  get dtype(): DType {
    return this.set.settings.dtype;
  }

  /** A copy of layer i's u (brought back from the device first, after a device step). */
  u(index: number): FloatArray {
    const layer = this.layer(index);
    this.set.syncVectorsToHost();
    return layer.state.u.slice();
  }

  /** A copy of layer i's v (brought back from the device first, after a device step). */
  v(index: number): FloatArray {
    const layer = this.layer(index);
    this.set.syncVectorsToHost();
    return layer.state.v.slice();
  }

  /**
   * Uploads the weights to the CUDA device of this batch (backend 'cuda'), for `step(handle)` and
   * `stepAsync(handle)`: they then stay there, divided in place, with u and v, and no host copy per step.
   */
  toDevice(weights: readonly FloatArray[]): DeviceWeights {
    this.set.queue.assertIdle('toDevice');
    const backend = deviceBackend(this.set.settings.backend);
    if (backend === null) {
      // Pinned to cpu or js, or 'auto' without a usable device.
      throw new Error(`SpectralNormBatch.toDevice() needs the cuda backend, but this batch runs on '${this.backend}'`);
    }
    const targets = this.warmupTargets(weights);
    return DeviceWeights.create(this.set, backend, this.dtype, targets.weights);
  }

  /**
   * Runs `iterations` power iterations on every layer without touching the weights (PyTorch's warm-up when a
   * parametrization is registered). Returns each layer's σ estimate.
   */
  warmup(weights: readonly FloatArray[], iterations: number): Float64Array {
    return this.set.runSync('warmup', this.warmupCore(weights, iterations));
  }

  /** warmup, off the event loop on the native backends. Rejects with warmup's errors; never throws synchronously. */
  warmupAsync(weights: readonly FloatArray[], iterations: number): Promise<Float64Array> {
    return this.set.runAsync(this.warmupCore(weights, iterations));
  }

  /**
   * One forward of PyTorch's spectral_norm on every layer: returns σ per layer and writes W/σ into `out`, or into
   * the weights. A layer with σ ≤ eps is left as it is. NaN or Infinity in any weight throws a RangeError and
   * modifies nothing.
   */
  step(weights: readonly FloatArray[] | DeviceWeights, options: BatchStepOptions = {}): Float64Array {
    return this.set.runSync('step', this.stepCore(weights, options));
  }

  /**
   * step, off the event loop on the native backends. Rejects with step's errors (never throws synchronously); calls
   * on one batch run in call order, and a synchronous call while one is in flight throws.
   */
  stepAsync(weights: readonly FloatArray[] | DeviceWeights, options: BatchStepOptions = {}): Promise<Float64Array> {
    return this.set.runAsync(this.stepCore(weights, options));
  }

  private *warmupCore(weights: unknown, iterations: unknown): Core<Float64Array> {
    const job = this.set.hostJob(this.warmupTargets(weights), checkWarmupIterations(iterations));
    return this.set.finishStep(job, yield job).slice();
  }

  private *stepCore(weights: unknown, options: unknown): Core<Float64Array> {
    const job = this.stepJob(weights, options);
    return this.set.finishStep(job, yield job).slice();
  }

  /** A step's job, its arguments checked: on the CUDA device for DeviceWeights, else on the host arrays. */
  private stepJob(weights: unknown, options: unknown): Job {
    if (weights instanceof DeviceWeights) return this.set.deviceJob(weights, this.deviceStepIterations(weights, options));
    const { targets, iterations } = this.stepArguments(weights, options);
    return this.set.hostJob(targets, iterations);
  }

  /** A device step's checks: the handle is this batch's and alive, and W/σ goes back into it (no `out`). */
  private deviceStepIterations(weights: DeviceWeights, options: unknown): number {
    if (weights.owner !== this.set) throw new TypeError('weights is a DeviceWeights of another SpectralNormBatch');
    weights.array('step');
    const { update, out } = checkStepOptions(options);
    if (out !== undefined) throw new TypeError('options.out is not supported with DeviceWeights: they are divided in place');
    return this.set.stepIterations(update);
  }

  /** The settings and every layer's shape, dim, name, u and v as plain JSON-serialisable data, for fromState. */
  state(): SpectralNormBatchState {
    this.set.syncVectorsToHost();
    const { iterations, eps, dtype, precision, legacy } = this.set.settings;
    return {
      format: 'spectral-norm.batch',
      version: 1,
      iterations,
      eps,
      dtype,
      precision,
      legacy,
      layers: this.set.layers.map((layer) => ({
        shape: layer.shape.slice(),
        dim: layer.dim,
        ...(layer.name === undefined ? {} : { name: layer.name }),
        ...(layer.operator ? { operator: operatorOptions(layer.operator) } : {}),
        u: toNumbers(layer.state.u),
        v: toNumbers(layer.state.v),
      })),
    };
  }

  /** Restores a batch from state(), exactly. `options` may choose the backend and threads. */
  static fromState(state: SpectralNormBatchState, options: Pick<CommonOptions, 'backend' | 'threads' | 'device'> = {}): SpectralNormBatch {
    const s = checkStateHeader(state, 'spectral-norm.batch', 'SpectralNormBatch.state()');
    const runtime = checkRuntimeOptions(options);
    if (!Array.isArray(s.layers)) throw new TypeError(`state.layers must be an array, got ${describe(s.layers)}`);
    s.layers.forEach((layer: unknown, i: number) => {
      const l = checkObject(`state.layers[${i}]`, layer);
      if (l.u === undefined || l.v === undefined) throw new TypeError(`state.layers[${i}] must have u and v`);
    });
    const layers = (s.layers as LayerSpec[]).map(({ shape, dim, name, operator, u, v }) => ({ shape, dim, name, operator, u, v }));
    const restored = {
      iterations: s.iterations,
      eps: s.eps,
      dtype: s.dtype,
      precision: s.precision,
      legacy: s.legacy,
      ...runtime,
    } as SpectralNormBatchOptions;
    return restoreNaming.with({ layers: 'state.layers', options: 'state' }, () => new SpectralNormBatch(layers, restored));
  }

  private layer(index: number): Layer {
    checkInteger('index', index, 0, this.length - 1);
    return this.set.layers[index];
  }

  private checkWeightList(weights: unknown): readonly unknown[] {
    if (!Array.isArray(weights)) throw new TypeError(`weights must be an array of typed arrays, got ${describe(weights)}`);
    if (weights.length !== this.length) {
      throw new RangeError(`weights has ${weights.length} entries but the batch has ${this.length} layers`);
    }
    return weights;
  }

  private warmupTargets(weights: unknown): Targets {
    const list = this.checkWeightList(weights);
    return checkTargets(this.set.layers, this.dtype, list, (i) => `weights[${i}]`, 'none');
  }

  private stepArguments(weights: unknown, options: unknown): { targets: Targets; iterations: number } {
    const list = this.checkWeightList(weights);
    const { update, out } = checkStepOptions(options);
    let mode: Parameters<typeof checkTargets>[4] = 'in-place';
    if (out !== undefined) {
      if (!Array.isArray(out)) throw new TypeError(`options.out must be an array of typed arrays, got ${describe(out)}`);
      if (out.length !== this.length) {
        throw new RangeError(`options.out has ${out.length} entries but the batch has ${this.length} layers`);
      }
      mode = { outs: out, names: (i) => `options.out[${i}]` };
    }
    const targets = checkTargets(this.set.layers, this.dtype, list, (i) => `weights[${i}]`, mode);
    return { targets, iterations: this.set.stepIterations(update) };
  }
}
