// SpectralNormalizer: PyTorch's torch.nn.utils.parametrizations.spectral_norm for one weight tensor, step by step.
import type { FloatArray } from '../binding';
import type { BackendName } from './backends';
import { type ConvOperatorOptions, operatorOptions } from './conv/geometry';
import type { Core } from './engine';
import { LayerSet, createLayer, toNumbers } from './layer-set';
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
import { type DType, type Precision, checkTargets } from './validate';

/** SpectralNormalizer's options: CommonOptions, plus how the weight is read as a matrix and where u and v start. */
export interface SpectralNormalizerOptions extends CommonOptions {
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Seed for the start vectors: the same seed gives the same bits on every backend. Default: random. */
  seed?: number;
  /** Start u (length shape[dim]), copied: e.g. a PyTorch model's weight_u or _u. Default: drawn from `seed`. */
  u?: ArrayLike<number>;
  /** Start v (length: the other dimensions' product), copied: e.g. weight_v or _v. Default: drawn from `seed`. */
  v?: ArrayLike<number>;
  /**
   * "Real SN" (Ryu et al. 2019): σ of the convolution x ↦ conv2d(x, W) on its input size rather than of W's matrix.
   * u is then output-shaped (cout·oh·ow) and v input-shaped (cin·h·w); each iteration is a convolution and its
   * transpose; `step` still divides the kernel by σ. See docs/conv.md. Not on the cuda backend yet.
   */
  operator?: ConvOperatorOptions;
}

/** SpectralNormalizer.step's options: training or eval mode, and where W/σ goes. */
export interface StepOptions {
  /** true (default): PyTorch's training mode, run the power iterations and update u and v. false: eval mode. */
  update?: boolean;
  /** Receives W/σ; without it the weight is divided in place. */
  out?: FloatArray;
}

/** A SpectralNormalizer as plain JSON-serialisable data, from state(); SpectralNormalizer.fromState restores it. */
export interface SpectralNormalizerState {
  /** What fromState checks the object is. */
  format: 'spectral-norm.normalizer';
  /** The format's version. */
  version: 1;
  /** The weight's shape. */
  shape: number[];
  /** The dimension whose size is the matrix's rows, from 0 (a negative one resolved). */
  dim: number;
  /** Power iterations per training step (n_power_iterations). */
  iterations: number;
  /** PyTorch's eps. */
  eps: number;
  /** The dtype of the weight, `out`, u and v. */
  dtype: DType;
  /** Absent in states saved before the option existed: they restore as 'mixed', the default. */
  precision?: Precision;
  /** torch.nn.utils.spectral_norm's order (v first, then u). */
  legacy: boolean;
  /** Present for a convolution operator. */
  operator?: ConvOperatorOptions;
  /** u: length shape[dim] (cout·oh·ow for an operator); empty for a 1-D weight outside legacy mode. */
  u: number[];
  /** v: length the other dimensions' product (cin·h·w for an operator); empty for a 1-D weight outside legacy mode. */
  v: number[];
}

/** How constructor errors name the arguments: fromState names them after the state object. */
interface Naming {
  shape: string;
  options: string;
}

/** fromState's Naming, handed to the constructor it calls. */
const restoreNaming = new ConstructorHandoff<Naming>();

/**
 * PyTorch's torch.nn.utils.parametrizations.spectral_norm for one weight tensor: keeps u and v between calls, and
 * each training step runs `iterations` power iterations and divides the weight by σ. The weight is passed to every
 * call, never kept.
 */
export class SpectralNormalizer {
  private readonly set: LayerSet;

  /**
   * Checks the shape and options and draws (from `seed`) or copies the start vectors; 'auto' picks the backend here,
   * for a training step on this weight. Throws a TypeError or RangeError that names the argument (`shape`,
   * `options.dim`, `options.u`, ...), including for a backend that is unknown or unavailable.
   */
  constructor(shape: readonly number[], options: SpectralNormalizerOptions = {}) {
    const naming = restoreNaming.take();
    const names = naming ?? { shape: 'shape', options: 'options' };
    const hasOperator = options !== null && typeof options === 'object' && (options as { operator?: unknown }).operator !== undefined;
    const { settings, opts } = checkConstructorOptions(names.options, options, ['dim', 'seed', 'u', 'v', 'operator'], hasOperator);
    const init = { shape, dim: opts.dim, u: opts.u, v: opts.v, seed: opts.seed, operator: opts.operator };
    const layer = createLayer(names.shape, names.options, init, settings, undefined, 'weight');
    this.set = new LayerSet('SpectralNormalizer', [layer], resolveSettings(settings, [layer.state.geometry], hasOperator));
  }

  /** The weight's shape, as given to the constructor (a copy). */
  get shape(): readonly number[] {
    return this.set.layers[0].shape.slice();
  }

  /** The dimension whose size is the matrix's rows, from 0 (a negative one resolved). */
  get dim(): number {
    return this.set.layers[0].dim;
  }

  /** The backend this normalizer's calls run on: the one given, or what 'auto' picked at construction. */
  get backend(): BackendName {
    return this.set.settings.backend.name;
  }

  /** The type the weight, `out`, u and v have: 'float32' (default) or 'float64'. */
  get dtype(): DType {
    return this.set.settings.dtype;
  }

  /** A copy of u (empty for a 1-D weight). */
  get u(): FloatArray {
    return this.set.layers[0].state.u.slice();
  }

  /** A copy of v (empty for a 1-D weight). */
  get v(): FloatArray {
    return this.set.layers[0].state.v.slice();
  }

  /** Runs `iterations` power iterations without touching the weight, as PyTorch does at registration. Returns σ. */
  warmup(weight: FloatArray, iterations: number): number {
    return this.set.runSync('warmup', this.warmupCore(weight, iterations));
  }

  /** warmup, off the event loop on the native backends. Rejects with warmup's errors; never throws synchronously. */
  warmupAsync(weight: FloatArray, iterations: number): Promise<number> {
    return this.set.runAsync(this.warmupCore(weight, iterations));
  }

  /**
   * One forward of PyTorch's spectral_norm: returns σ and writes W/σ into `out`, or into the weight. σ ≤ eps leaves
   * the weight (and u, v) as they are; NaN or Infinity throws a RangeError and modifies nothing.
   */
  step(weight: FloatArray, options: StepOptions = {}): number {
    return this.set.runSync('step', this.stepCore(weight, options));
  }

  /**
   * step, off the event loop on the native backends. Rejects with step's errors (never throws synchronously); calls
   * on one normalizer run in call order, and a synchronous call while one is in flight throws.
   */
  stepAsync(weight: FloatArray, options: StepOptions = {}): Promise<number> {
    return this.set.runAsync(this.stepCore(weight, options));
  }

  /** The shape, settings, u and v as plain JSON-serialisable data, for fromState. */
  state(): SpectralNormalizerState {
    const layer = this.set.layers[0];
    const { iterations, eps, dtype, precision, legacy } = this.set.settings;
    return {
      format: 'spectral-norm.normalizer',
      version: 1,
      shape: layer.shape.slice(),
      dim: layer.dim,
      iterations,
      eps,
      dtype,
      precision,
      legacy,
      ...(layer.operator ? { operator: operatorOptions(layer.operator) } : {}),
      u: toNumbers(layer.state.u),
      v: toNumbers(layer.state.v),
    };
  }

  /** Restores a normalizer from state(), exactly. `options` may choose the backend and threads. */
  static fromState(
    state: SpectralNormalizerState,
    options: Pick<CommonOptions, 'backend' | 'threads' | 'device'> = {},
  ): SpectralNormalizer {
    const s = checkStateHeader(state, 'spectral-norm.normalizer', 'SpectralNormalizer.state()');
    const runtime = checkRuntimeOptions(options);
    if (s.u === undefined || s.v === undefined) throw new TypeError('state must have u and v');
    const { shape, dim, iterations, eps, dtype, precision, legacy, operator, u, v } = s as unknown as SpectralNormalizerState;
    const restored = { dim, iterations, eps, dtype, precision, legacy, operator, u, v, ...runtime };
    return restoreNaming.with({ shape: 'state.shape', options: 'state' }, () => new SpectralNormalizer(shape, restored));
  }

  private *warmupCore(weight: unknown, iterations: unknown): Core<number> {
    const targets = checkTargets(this.set.layers, this.dtype, [weight], () => 'weight', 'none');
    const job = this.set.hostJob(targets, checkWarmupIterations(iterations));
    return this.set.finishStep(job, yield job)[0];
  }

  private *stepCore(weight: unknown, options: unknown): Core<number> {
    const { update, out } = checkStepOptions(options);
    const mode = out === undefined ? ('in-place' as const) : { outs: [out], names: () => 'options.out' };
    const targets = checkTargets(this.set.layers, this.dtype, [weight], () => 'weight', mode);
    const job = this.set.hostJob(targets, this.set.stepIterations(update));
    return this.set.finishStep(job, yield job)[0];
  }
}
