// SpectralNormalization: a Keras-compatible TF.js layer wrapper. The wrapped layer computes with W/σ while its kernel
// variable keeps W; gradients reach W through σ = vᵀ W u with u and v held constant. The power iteration that updates
// u and v runs in this library's engine: a SpectralNormalizer per layer, or one SpectralNormBatch for the whole model
// from SpectralNormCallback.
import * as tf from '@tensorflow/tfjs';

import { SpectralNormalizer } from '../normalizer';
import { MAX_ITERATIONS, checkInteger, checkNonNegative, checkSeed, describe } from '../validate';
import { KERAS_LAYOUT, firstNonFinite, hostValues, kernelAttribute, kernelVariable, sameValues, withKernel } from './kernel';
import { type EngineNormalized, divideBySigma, engineDivided } from './normalized-kernel';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Kwargs = Parameters<tf.layers.Layer['call']>[1];
type ConfigDict = tf.serialization.ConfigDict;

/** SpectralNormalization's arguments: the layer to wrap, the power iteration's settings, and tf.layers.Layer's own. */
export interface SpectralNormalizationArgs extends LayerArgs {
  /** The layer to wrap: dense, conv1d, conv2d, conv2dTranspose, conv3d, separableConv2d, embedding. */
  layer: tf.layers.Layer;
  /** Power iterations per training call (Keras's power_iterations, PyTorch's n_power_iterations). Default 1. */
  powerIterations?: number;
  /** normalize(x) = x / max(‖x‖, eps), and |σ| ≤ eps leaves W as it is. Default 1e-12. */
  eps?: number;
  /** Seed of the start vector u; default: random. */
  seed?: number;
  /** Power iterations run once when the layer is built, as PyTorch does at registration. Default 15; 0 as Keras. */
  warmupIterations?: number;
  /**
   * Where W/σ and its gradient are computed: 'engine' (by this library, from the kernel's values on the host, with
   * the gradient in closed form), 'tf-ops' (tf.matMul and tf.div, differentiated by tfjs), or 'auto' (default):
   * 'engine' where tensors live in JS-visible host memory (cpu, tensorflow), 'tf-ops' on the others. On wasm the
   * kernel, W/σ and the gradient would each cross the wasm heap, and tf ops there (XNNPACK) measured faster.
   */
  normalizeWith?: NormalizeWith;
}

/** Where W/σ and its gradient are computed: see SpectralNormalizationArgs.normalizeWith. */
export type NormalizeWith = 'auto' | 'engine' | 'tf-ops';

/** Backends whose tensors are host memory that dataSync() hands over without a copy, where 'auto' means 'engine'. */
const HOST_BACKENDS = new Set(['cpu', 'tensorflow']);

/** What the layer has once built: the wrapped kernel and its own u and v weights. */
interface Built {
  kernel: tf.LayerVariable;
  shape: number[];
  u: tf.LayerVariable;
  v: tf.LayerVariable;
}

/** The engine's input for one layer, for SpectralNormCallback. */
export interface EngineInput {
  shape: number[];
  kernel: Float32Array;
  u: Float32Array;
}

/**
 * Keras's SpectralNormalization wrapper for TF.js: the wrapped layer computes with W/σ while its kernel variable
 * keeps W. u and v are non-trainable weights of this layer, saved and loaded with the model. The kernel is read as
 * Keras does: rows along its last dimension, in torch.nn.utils.spectral_norm's order (v first, then u).
 */
export class SpectralNormalization extends tf.layers.Layer {
  /** The name the class is registered under with tf.serialization, as in Keras. */
  static className = 'SpectralNormalization';

  /** The wrapped layer; its weights are this layer's, followed by u and v. */
  readonly layer: tf.layers.Layer;
  /** Power iterations per training call. */
  readonly powerIterations: number;
  /** PyTorch's eps: |σ| ≤ eps leaves W as it is. */
  readonly eps: number;
  /** The start vector's seed; undefined for a random one. */
  readonly seed: number | undefined;
  /** Power iterations run once when the layer is built (0: none). */
  readonly warmupIterations: number;
  /** As given (default 'auto'); usesEngine says what it means on the current tfjs backend. */
  readonly normalizeWith: NormalizeWith;
  private readonly kernelAttribute: string;
  private state: Built | null = null;
  /** u and v for this layer's own training calls; rebuilt whenever the u weight no longer matches it. */
  private normalizer: SpectralNormalizer | null = null;
  /** SpectralNormCallback's result for this training step: the next training call uses it instead of iterating. */
  private ahead: EngineNormalized | null = null;
  /** Set while tf.loadLayersModel builds the layer: the weights about to be loaded make a warm-up pointless. */
  private fastWeightInit = false;

  /**
   * Throws a TypeError when args is not an object or args.layer not a tf.layers.Layer, and a TypeError or RangeError
   * that names the option (`powerIterations`, `eps`, `seed`, `warmupIterations`, `normalizeWith`) when one is wrong.
   */
  constructor(args: SpectralNormalizationArgs) {
    const layer = checkWrappedLayer(args);
    const inherited = args.inputShape === undefined && args.batchInputShape === undefined ? layer.batchInputShape : undefined;
    super({ ...args, batchInputShape: args.batchInputShape ?? inherited, dtype: args.dtype ?? layer.dtype });
    this.layer = layer;
    this.powerIterations = checkInteger('powerIterations', args.powerIterations, 1, MAX_ITERATIONS, 1);
    this.eps = checkNonNegative('eps', args.eps, 1e-12);
    this.seed = checkSeed('seed', args.seed ?? undefined);
    this.warmupIterations = checkInteger('warmupIterations', args.warmupIterations, 0, MAX_ITERATIONS, 15);
    this.normalizeWith = checkNormalizeWith(args.normalizeWith);
    this.kernelAttribute = kernelAttribute(layer);
    if (args.trainable !== undefined) layer.trainable = args.trainable;
    this.supportsMasking = layer.supportsMasking;
  }

  // The wrapped layer's weights are this layer's (tfjs-layers' Wrapper does the same): the model trains and saves
  // them through this layer, followed by u and v.
  /** The wrapped layer's trainable flag; setting it sets the wrapped layer's. */
  override get trainable(): boolean {
    // Read during tf.layers.Layer's constructor, before `layer` is set.
    return this.layer === undefined ? true : this.layer.trainable;
  }

  override set trainable(value: boolean) {
    if (this.layer !== undefined) this.layer.trainable = value;
  }

  /** The wrapped layer's trainable weights (its kernel and bias). */
  override get trainableWeights(): tf.LayerVariable[] {
    return this.layer.trainableWeights;
  }

  /** The wrapped layer's non-trainable weights, then u and v. */
  override get nonTrainableWeights(): tf.LayerVariable[] {
    return this.layer.nonTrainableWeights.concat(super.nonTrainableWeights);
  }

  /** The wrapped layer's losses (its regularizers'), then this layer's. */
  override get losses(): tf.layers.Layer['losses'] {
    return this.layer.losses.concat(super.losses);
  }

  /** Set by tf.loadLayersModel while it builds the model: the weights about to be loaded make the warm-up pointless. */
  override setFastWeightInitDuringBuild(value: boolean): void {
    super.setFastWeightInitDuringBuild(value);
    this.layer.setFastWeightInitDuringBuild(value);
    this.fastWeightInit = value;
  }

  /**
   * Builds the wrapped layer if it is not built, and adds u (length: the kernel's last dimension) and v (the other
   * dimensions' product); unless weights are about to be loaded, draws them from `seed` and runs `warmupIterations`
   * power iterations on the initial kernel, as PyTorch does at registration.
   */
  override build(inputShape: tf.Shape | tf.Shape[]): void {
    if (!this.layer.built) {
      this.layer.build(inputShape);
      this.layer.built = true;
    }
    const kernel = kernelVariable(this.layer, this.kernelAttribute);
    const shape = kernel.shape as number[];
    const units = shape[shape.length - 1];
    const zeros = tf.initializers.zeros();
    const u = this.addWeight('u', [units], 'float32', zeros, undefined, false);
    const v = this.addWeight('v', [kernel.read().size / units], 'float32', zeros, undefined, false);
    this.state = { kernel, shape, u, v };
    if (!this.fastWeightInit) this.initializeVectors();
    super.build(inputShape);
  }

  /** The wrapped layer's output shape. */
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return this.layer.computeOutputShape(inputShape);
  }

  /** The wrapped layer's mask. */
  override computeMask(inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor | tf.Tensor[] {
    return this.layer.computeMask(inputs, mask);
  }

  /**
   * A training call (`training: true`, as model.fit and trainOnBatch pass) first runs `powerIterations` power
   * iterations on the current W and stores u and v, as PyTorch's forward does, unless SpectralNormCallback already ran
   * them for this step; then the wrapped layer computes with W/σ. Inference uses the stored u and v as they are.
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    this.built_('call');
    const training = kwargs?.training === true;
    const ahead = training ? this.ahead : null;
    this.ahead = null;
    return tf.tidy(() => {
      const normalized = this.normalized(training, ahead);
      return withKernel(this.layer, this.kernelAttribute, normalized, () => this.layer.call(inputs, kwargs));
    });
  }

  /**
   * W/σ from the kernel and the stored u and v: what the wrapped layer computes with in inference. Gradients flow to
   * the kernel alone, u and v being constants, as PyTorch's detached u and v.
   */
  normalizedKernel(): tf.Tensor {
    this.built_('normalizedKernel');
    return this.normalized(false, null);
  }

  /** Whether W/σ comes from the engine (see normalizeWith), for the current tfjs backend. */
  get usesEngine(): boolean {
    return this.normalizeWith === 'auto' ? HOST_BACKENDS.has(tf.getBackend()) : this.normalizeWith === 'engine';
  }

  /** W/σ for a training call (after this step's iteration, run here unless `ahead` has it) or an inference call. */
  private normalized(training: boolean, ahead: EngineNormalized | null): tf.Tensor {
    const { kernel, u, v } = this.built_('normalization');
    if (this.usesEngine) return engineDivided(kernel.read(), ahead ?? this.engineStep(training), this.eps);
    if (training && ahead === null) this.engineStep(training);
    return divideBySigma(kernel.read(), u.read(), v.read(), this.eps);
  }

  /** The wrapped layer's { className, config } and this layer's options, for saving the model. */
  override getConfig(): ConfigDict {
    const config: ConfigDict = {
      layer: { className: this.layer.getClassName(), config: this.layer.getConfig() },
      powerIterations: this.powerIterations,
      eps: this.eps,
      warmupIterations: this.warmupIterations,
      normalizeWith: this.normalizeWith,
    };
    if (this.seed !== undefined) config.seed = this.seed;
    return { ...config, ...super.getConfig() };
  }

  /**
   * The layer from getConfig()'s output, the wrapped one through tfjs's registry of serializable classes. Throws a
   * TypeError when config.layer is malformed or names a class that is not a registered layer.
   */
  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: ConfigDict,
  ): T {
    const { layer, ...rest } = config;
    return new cls({ ...rest, layer: deserializeLayer(layer) });
  }

  /** @internal The kernel's values and the stored u, for one SpectralNormBatch call over the model. */
  engineInput(): EngineInput {
    const { shape } = this.built_('a power iteration');
    return { shape, kernel: this.kernelValues(), u: this.storedU() };
  }

  /** @internal Stores SpectralNormCallback's step for this layer: the step's next training call will not iterate. */
  acceptIteration(result: EngineNormalized): void {
    this.storeVectors(result.u, result.v);
    this.ahead = result;
  }

  /** @internal The step is over: a training call from now on runs its own iteration again. */
  forgetIteration(): void {
    this.ahead = null;
  }

  /** @internal The error for a NaN or ±Infinity in this layer's kernel, found when the engine refused it. */
  nonFiniteKernel(cause: unknown): RangeError {
    const at = firstNonFinite(this.kernelValues());
    return new RangeError(
      `kernel of ${this.getClassName()} '${this.name}' contains ${at < 0 ? 'values that overflowed' : 'NaN or Infinity'}` +
        `${at < 0 ? ' during power iteration' : ` (at index ${at})`}; its kernel, u and v were not modified`,
      { cause },
    );
  }

  private built_(what: string): Built {
    if (this.state === null) {
      throw new Error(
        `${this.getClassName()} '${this.name}' is not built yet, so ${what} has no kernel: call it on an input, or ` +
          `give the wrapped layer an inputShape, first`,
      );
    }
    return this.state;
  }

  private kernelValues(): Float32Array {
    return hostValues(this.built_('a power iteration').kernel.read());
  }

  /** The stored u, checked: a u of zeros (a weight never initialized or loaded) would stay zero. */
  private storedU(): Float32Array {
    const u = hostValues(this.built_('a power iteration').u.read());
    if (u.every((x) => x === 0)) {
      throw new RangeError(`u of ${this.getClassName()} '${this.name}' is all zeros: set or load a non-zero u first`);
    }
    return u;
  }

  private storeVectors(u: Float32Array, v: Float32Array): void {
    const state = this.built_('storing u and v');
    tf.tidy(() => {
      state.u.write(tf.tensor1d(u));
      state.v.write(tf.tensor1d(v));
    });
  }

  /** Start vectors from the seed, then PyTorch's warm-up on the initial kernel. */
  private initializeVectors(): void {
    const { shape } = this.built_('initialization');
    const engine = new SpectralNormalizer(shape, { ...KERAS_LAYOUT, iterations: this.powerIterations, eps: this.eps, seed: this.seed });
    if (this.warmupIterations > 0) this.engine(() => engine.warmup(this.kernelValues(), this.warmupIterations));
    this.normalizer = engine;
    this.storeVectors(engine.u as Float32Array, engine.v as Float32Array);
  }

  /**
   * One step of this layer's own SpectralNormalizer: `powerIterations` iterations when training (u and v then
   * stored), none in inference; then σ and W/σ.
   */
  private engineStep(training: boolean): EngineNormalized {
    const { shape, v: vWeight } = this.built_('a power iteration');
    const u = this.storedU();
    const v = hostValues(vWeight.read());
    // The weights may have been set or loaded since this normalizer last ran (or SpectralNormCallback ran instead).
    if (this.normalizer === null || !sameValues(this.normalizer.u, u) || !sameValues(this.normalizer.v, v)) {
      const start = v.some((x) => x !== 0) ? { u, v } : { u };
      this.normalizer = new SpectralNormalizer(shape, { ...KERAS_LAYOUT, iterations: this.powerIterations, eps: this.eps, ...start });
    }
    const engine = this.normalizer;
    const values = new Float32Array(u.length * v.length);
    let sigma = 0;
    this.engine(() => {
      sigma = engine.step(this.kernelValues(), { update: training, out: values });
    });
    const result = { values, sigma, u: engine.u as Float32Array, v: engine.v as Float32Array };
    if (training) this.storeVectors(result.u, result.v);
    return result;
  }

  /** Runs an engine call; its refusal of a non-finite kernel becomes this layer's error. */
  private engine(run: () => unknown): void {
    try {
      run();
    } catch (error) {
      if (error instanceof RangeError && /NaN or Infinity/.test(error.message)) throw this.nonFiniteKernel(error);
      throw error;
    }
  }
}

tf.serialization.registerClass(SpectralNormalization);

function checkNormalizeWith(value: unknown): NormalizeWith {
  if (value === undefined || value === null) return 'auto';
  if (value !== 'auto' && value !== 'engine' && value !== 'tf-ops') {
    throw new RangeError(`normalizeWith must be 'auto', 'engine' or 'tf-ops', got ${describe(value)}`);
  }
  return value;
}

function checkWrappedLayer(args: SpectralNormalizationArgs): tf.layers.Layer {
  if (args === null || typeof args !== 'object') throw new TypeError(`args must be an object, got ${describe(args)}`);
  if (!(args.layer instanceof tf.layers.Layer)) {
    throw new TypeError(`layer must be a tf.layers.Layer (for example tf.layers.dense({ units })), got ${describe(args.layer)}`);
  }
  return args.layer;
}

/** The wrapped layer from its { className, config }, through tfjs's registry of serializable classes. */
function deserializeLayer(config: unknown): tf.layers.Layer {
  const entry = config as { className?: unknown; config?: unknown } | null;
  if (entry === null || typeof entry !== 'object' || typeof entry.className !== 'string') {
    throw new TypeError(`config.layer must be { className, config }, got ${describe(config)}`);
  }
  const registered = tf.serialization.SerializationMap.getMap().classNameMap[entry.className];
  if (registered === undefined) throw new TypeError(`config.layer.className '${entry.className}' is not a registered class`);
  const [cls, fromConfig] = registered;
  // A copy: tfjs's layer constructors write into the nested configs they are given.
  const layer = fromConfig(cls, structuredClone(entry.config ?? {}) as ConfigDict);
  if (!(layer instanceof tf.layers.Layer)) throw new TypeError(`config.layer.className '${entry.className}' is not a layer`);
  return layer;
}
