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
  resolveSettings,
} from './options';
import { type DType, type Precision, type Targets, checkTargets, checkInteger, checkKnownKeys, checkObject, checkSeed, describe } from './validate';

export interface LayerSpec {
  shape: readonly number[];
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Start vectors, for example a PyTorch model's weight_u / _u and weight_v / _v. */
  u?: ArrayLike<number>;
  v?: ArrayLike<number>;
  /** Seed for this layer's start vectors; default: the batch's seed plus the layer's index. */
  seed?: number;
  /** Used in error messages. */
  name?: string;
  /** "Real SN": σ of the convolution on its input size (see SpectralNormalizerOptions.operator). */
  operator?: ConvOperatorOptions;
}

export interface SpectralNormBatchOptions extends CommonOptions {
  /** Layer i draws its start vectors from seed + i unless it has its own; default: random. */
  seed?: number;
}

export interface BatchStepOptions {
  /** true (default): PyTorch's training mode, run the power iterations and update u and v. false: eval mode. */
  update?: boolean;
  /** One array per layer to receive W/σ; without it the weights are divided in place. */
  out?: readonly FloatArray[];
}

export interface SpectralNormBatchState {
  format: 'spectral-norm.batch';
  version: 1;
  iterations: number;
  eps: number;
  dtype: DType;
  /** Absent in states saved before the option existed: they restore as 'mixed', the default. */
  precision?: Precision;
  legacy: boolean;
  layers: { shape: number[]; dim: number; name?: string; operator?: ConvOperatorOptions; u: number[]; v: number[] }[];
}

export const LAYER_KEYS = ['shape', 'dim', 'u', 'v', 'seed', 'name', 'operator'];

/** How constructor errors name the arguments: fromState names them after the state object. */
interface Naming {
  layers: string;
  options: string;
}

export class SpectralNormBatch {
  private readonly set: LayerSet;

  constructor(layers: readonly LayerSpec[], options: SpectralNormBatchOptions = {}, naming?: Naming) {
    const names = naming ?? { layers: 'layers', options: 'options' };
    const operators = Array.isArray(layers) && layers.some((l: unknown) => (l as { operator?: unknown } | null)?.operator !== undefined);
    const { settings, opts } = checkConstructorOptions(names.options, options, ['seed'], operators);
    const seed = checkSeed(`${names.options}.seed`, opts.seed);
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new TypeError(`${names.layers} must be a non-empty array of { shape, dim?, u?, v?, seed?, name?, operator? }, got ${describe(layers)}`);
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
    this.set = new LayerSet('SpectralNormBatch', built, resolveSettings(settings, built.map((l) => l.state.geometry), operators));
  }

  /** Number of layers. */
  get length(): number {
    return this.set.layers.length;
  }

  /** The backend this batch's steps on host arrays run on; steps on DeviceWeights always run on cuda. */
  get backend(): BackendName {
    return this.set.settings.backend.name;
  }

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
    return new DeviceWeights(this.set, backend, this.dtype, targets.weights);
  }

  /**
   * Runs `iterations` power iterations on every layer without touching the weights (PyTorch's warm-up when a
   * parametrization is registered). Returns each layer's σ estimate.
   */
  warmup(weights: readonly FloatArray[], iterations: number): Float64Array {
    return this.set.runSync('warmup', this.warmupCore(weights, iterations));
  }

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
    const restored = { iterations: s.iterations, eps: s.eps, dtype: s.dtype, precision: s.precision, legacy: s.legacy, ...runtime } as SpectralNormBatchOptions;
    return new SpectralNormBatch(layers, restored, { layers: 'state.layers', options: 'state' });
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
