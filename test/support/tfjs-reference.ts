// The pure-tf-ops reference of spectral-norm/tfjs's SpectralNormalization, for its parity tests and its benchmark:
// the same algorithm, written in tf ops alone, as Keras 3's layer is. With W = reshape(kernel, [-1, units]) and
// normalize(x) = x / max(‖x‖, eps), each power iteration is Keras's v = normalize(W u), u = normalize(Wᵀ v); a
// training call runs powerIterations of them before W/σ is used, σ = vᵀ W u with u and v held constant.
import * as tf from '@tensorflow/tfjs';

import { kernelAttribute, kernelVariable, withKernel } from '../../lib/tfjs/kernel';

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>;
type Kwargs = Parameters<tf.layers.Layer['call']>[1];

function normalize(x: tf.Tensor, eps: number): tf.Tensor {
  return tf.div(x, tf.maximum(tf.norm(x), eps));
}

/** `iterations` power iterations from u on reshape(kernel, [-1, units]): the new u and v. */
export function referencePowerIteration(
  kernel: tf.Tensor,
  u: tf.Tensor,
  iterations: number,
  eps: number,
): { u: tf.Tensor1D; v: tf.Tensor1D } {
  return tf.tidy(() => {
    const units = kernel.shape[kernel.rank - 1];
    const w = tf.reshape(kernel, [-1, units]);
    let uu = tf.reshape(u, [units, 1]);
    let vv = tf.zeros([w.shape[0], 1]);
    for (let i = 0; i < iterations; i++) {
      vv = normalize(tf.matMul(w, uu), eps);
      uu = normalize(tf.matMul(w, vv, true, false), eps);
    }
    return { u: tf.reshape(uu, [-1]) as tf.Tensor1D, v: tf.reshape(vv, [-1]) as tf.Tensor1D };
  });
}

/**
 * kernel / σ, σ = vᵀ·reshape(kernel, [-1, units])·u (Keras 3's matmul(matmul(v, W), uᵀ)). Like Keras and PyTorch it
 * does not guard σ ≤ eps (the layer leaves W as it is there): the tests' kernels never come near.
 */
export function referenceNormalized(kernel: tf.Tensor, u: tf.Tensor, v: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const units = kernel.shape[kernel.rank - 1];
    const w = tf.reshape(kernel, [-1, units]);
    const sigma = tf.reshape(tf.matMul(tf.matMul(tf.reshape(v, [1, -1]), w), tf.reshape(u, [-1, 1])), []);
    return tf.div(kernel, sigma);
  });
}

export interface TfOpsSpectralNormalizationArgs extends LayerArgs {
  layer: tf.layers.Layer;
  /** The start vector, before the warm-up. */
  u0: Float32Array;
  powerIterations?: number;
  eps?: number;
  warmupIterations?: number;
}

/**
 * The reference as a layer, so that a model can use it in place of SpectralNormalization (the benchmark's third
 * variant). u and v are weights: σ reads them as constants, which is stop_gradient in tfjs, and the iteration's ops
 * never reach the loss's gradient.
 */
export class TfOpsSpectralNormalization extends tf.layers.Layer {
  static className = 'TfOpsSpectralNormalization';
  readonly layer: tf.layers.Layer;
  readonly powerIterations: number;
  readonly eps: number;
  private readonly warmupIterations: number;
  private readonly u0: Float32Array;
  private readonly attribute: string;
  private vectors: { kernel: tf.LayerVariable; u: tf.LayerVariable; v: tf.LayerVariable } | null = null;

  constructor(args: TfOpsSpectralNormalizationArgs) {
    super({ ...args, batchInputShape: args.batchInputShape ?? args.layer.batchInputShape, dtype: args.layer.dtype });
    this.layer = args.layer;
    this.u0 = args.u0;
    this.powerIterations = args.powerIterations ?? 1;
    this.eps = args.eps ?? 1e-12;
    this.warmupIterations = args.warmupIterations ?? 15;
    this.attribute = kernelAttribute(args.layer);
  }

  override get trainableWeights(): tf.LayerVariable[] {
    return this.layer.trainableWeights;
  }

  override get nonTrainableWeights(): tf.LayerVariable[] {
    return this.layer.nonTrainableWeights.concat(super.nonTrainableWeights);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    if (!this.layer.built) {
      this.layer.build(inputShape);
      this.layer.built = true;
    }
    const kernel = kernelVariable(this.layer, this.attribute);
    const units = kernel.shape[kernel.shape.length - 1] as number;
    const zeros = tf.initializers.zeros();
    const u = this.addWeight('u', [units], 'float32', zeros, undefined, false);
    const v = this.addWeight('v', [kernel.read().size / units], 'float32', zeros, undefined, false);
    this.vectors = { kernel, u, v };
    tf.tidy(() => {
      u.write(tf.tensor1d(this.u0));
    });
    this.iterate(this.warmupIterations);
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return this.layer.computeOutputShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor | tf.Tensor[] {
    if (kwargs?.training === true) this.iterate(this.powerIterations);
    return tf.tidy(() => {
      const normalized = this.normalizedKernel();
      return withKernel(this.layer, this.attribute, normalized, () => this.layer.call(inputs, kwargs));
    });
  }

  normalizedKernel(): tf.Tensor {
    const { kernel, u, v } = this.built_();
    return referenceNormalized(kernel.read(), u.read(), v.read());
  }

  /** The current u and v. */
  vectorValues(): { u: Float32Array; v: Float32Array } {
    const { u, v } = this.built_();
    return { u: u.read().dataSync() as Float32Array, v: v.read().dataSync() as Float32Array };
  }

  private iterate(iterations: number): void {
    const { kernel, u, v } = this.built_();
    if (iterations === 0) return;
    tf.tidy(() => {
      const next = referencePowerIteration(kernel.read(), u.read(), iterations, this.eps);
      u.write(next.u);
      v.write(next.v);
    });
  }

  private built_() {
    if (this.vectors === null) throw new Error(`${this.name} is not built`);
    return this.vectors;
  }
}

tf.serialization.registerClass(TfOpsSpectralNormalization);
