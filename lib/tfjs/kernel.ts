// Which weight of a wrapped TF.js layer spectral normalization divides, and how the engine reads it.
import * as tf from '@tensorflow/tfjs';

/** Where each supported tfjs-layers class keeps the weight to normalize (Keras 3 takes `kernel` or `embeddings`). */
const KERNEL_ATTRIBUTES: Readonly<Record<string, string>> = {
  Dense: 'kernel',
  Conv1D: 'kernel',
  Conv2D: 'kernel',
  Conv2DTranspose: 'kernel',
  Conv3D: 'kernel',
  SeparableConv2D: 'pointwiseKernel',
  Embedding: 'embeddings',
};

/**
 * How the engine reads a kernel, as Keras 3 does: reshape(kernel, [-1, units]) with u of length units (this library's
 * dim -1), and Keras's order of the power iteration, v = normalize(W u) then u = normalize(Wᵀ v), so that u is the
 * state carried from step to step (this library's legacy order, torch.nn.utils.spectral_norm's).
 */
export const KERAS_LAYOUT = { dim: -1, legacy: true } as const;

const SUPPORTED = 'dense, conv1d, conv2d, conv2dTranspose, conv3d, separableConv2d (its pointwise kernel), embedding';

function attributeValue(layer: tf.layers.Layer, attribute: string): unknown {
  return (layer as unknown as Record<string, unknown>)[attribute];
}

/**
 * The attribute of `layer` that holds its kernel: known for the supported classes before they are built; any other
 * layer must already be built and have a `kernel` weight.
 */
export function kernelAttribute(layer: tf.layers.Layer): string {
  const known = KERNEL_ATTRIBUTES[layer.getClassName()];
  if (known !== undefined) return known;
  if (layer.built && attributeValue(layer, 'kernel') instanceof tf.LayerVariable) return 'kernel';
  throw new TypeError(
    `layer must have a kernel to normalize (${SUPPORTED}, or a built layer with a 'kernel' weight), ` +
      `got ${layer.getClassName()} '${layer.name}'`,
  );
}

/** The kernel variable of a built layer, checked: a float32 weight of rank ≥ 2, read as reshape(-1, units). */
export function kernelVariable(layer: tf.layers.Layer, attribute: string): tf.LayerVariable {
  const kernel = attributeValue(layer, attribute);
  if (!(kernel instanceof tf.LayerVariable)) {
    throw new TypeError(`layer ${layer.getClassName()} '${layer.name}' has no '${attribute}' weight after build()`);
  }
  if (kernel.shape.length < 2 || kernel.dtype !== 'float32') {
    throw new TypeError(
      `layer ${layer.getClassName()} '${layer.name}': its ${attribute} must be a float32 tensor of rank ≥ 2, ` +
        `got ${kernel.dtype} [${kernel.shape.join(', ')}]`,
    );
  }
  return kernel;
}

/**
 * Runs `body` while the layer's kernel attribute reads as `value`: the wrapped layer's own call() then computes with
 * W/σ, while its variable (what the optimizer updates, and what is saved) keeps W.
 */
export function withKernel<T>(layer: tf.layers.Layer, attribute: string, value: tf.Tensor, body: () => T): T {
  const holder = layer as unknown as Record<string, unknown>;
  const original = holder[attribute];
  holder[attribute] = { read: () => value };
  try {
    return body();
  } finally {
    holder[attribute] = original;
  }
}

/** A float32 tensor's values on the host (the engine's input): on CPU backends, no copy. */
export function hostValues(tensor: tf.Tensor): Float32Array {
  return tensor.dataSync() as Float32Array;
}

/** Bit-for-bit equality of two vectors (neither holds NaN: the engine never stores one). */
export function sameValues(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The index of the first NaN or ±Infinity, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}
