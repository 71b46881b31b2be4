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
  resolveSettings,
} from './options';
import { type DType, type Precision, checkTargets } from './validate';

export interface SpectralNormalizerOptions extends CommonOptions {
  /** The dimension whose size is the matrix's rows (PyTorch's dim). Default 0; negative counts from the end. */
  dim?: number;
  /** Seed for the start vectors: the same seed gives the same bits on every backend. Default: random. */
  seed?: number;
  /** Start vectors, for example a PyTorch model's weight_u / _u and weight_v / _v. */
  u?: ArrayLike<number>;
  v?: ArrayLike<number>;
  /**
   * "Real SN" (Ryu et al. 2019): σ of the convolution x ↦ conv2d(x, W) on its input size rather than of W's matrix.
   * u is then output-shaped (cout·oh·ow) and v input-shaped (cin·h·w); each iteration is a convolution and its
   * transpose; `step` still divides the kernel by σ. See docs/conv.md. Not on the cuda backend yet.
   */
  operator?: ConvOperatorOptions;
}

export interface StepOptions {
  /** true (default): PyTorch's training mode, run the power iterations and update u and v. false: eval mode. */
  update?: boolean;
  /** Receives W/σ; without it the weight is divided in place. */
  out?: FloatArray;
}

export interface SpectralNormalizerState {
  format: 'spectral-norm.normalizer';
  version: 1;
  shape: number[];
  dim: number;
  iterations: number;
  eps: number;
  dtype: DType;
  /** Absent in states saved before the option existed: they restore as 'mixed', the default. */
  precision?: Precision;
  legacy: boolean;
  /** Present for a convolution operator. */
  operator?: ConvOperatorOptions;
  u: number[];
  v: number[];
}

/** How constructor errors name the arguments: fromState names them after the state object. */
interface Naming {
  shape: string;
  options: string;
}

export class SpectralNormalizer {
  private readonly set: LayerSet;

  constructor(shape: readonly number[], options: SpectralNormalizerOptions = {}, naming?: Naming) {
    const names = naming ?? { shape: 'shape', options: 'options' };
    const hasOperator = options !== null && typeof options === 'object' && (options as { operator?: unknown }).operator !== undefined;
    const { settings, opts } = checkConstructorOptions(names.options, options, ['dim', 'seed', 'u', 'v', 'operator'], hasOperator);
    const init = { shape, dim: opts.dim, u: opts.u, v: opts.v, seed: opts.seed, operator: opts.operator };
    const layer = createLayer(names.shape, names.options, init, settings, undefined, 'weight');
    this.set = new LayerSet('SpectralNormalizer', [layer], resolveSettings(settings, [layer.state.geometry], hasOperator));
  }

  get shape(): readonly number[] {
    return this.set.layers[0].shape.slice();
  }

  get dim(): number {
    return this.set.layers[0].dim;
  }

  get backend(): BackendName {
    return this.set.settings.backend.name;
  }

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

  stepAsync(weight: FloatArray, options: StepOptions = {}): Promise<number> {
    return this.set.runAsync(this.stepCore(weight, options));
  }

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
  static fromState(state: SpectralNormalizerState, options: Pick<CommonOptions, 'backend' | 'threads' | 'device'> = {}): SpectralNormalizer {
    const s = checkStateHeader(state, 'spectral-norm.normalizer', 'SpectralNormalizer.state()');
    const runtime = checkRuntimeOptions(options);
    if (s.u === undefined || s.v === undefined) throw new TypeError('state must have u and v');
    const { shape, dim, iterations, eps, dtype, precision, legacy, operator, u, v } = s as unknown as SpectralNormalizerState;
    const restored = { dim, iterations, eps, dtype, precision, legacy, operator, u, v, ...runtime };
    return new SpectralNormalizer(shape, restored, { shape: 'state.shape', options: 'state' });
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
