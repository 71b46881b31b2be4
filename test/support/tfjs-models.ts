// Layers and small models for the TF.js tests: the wrapped kinds, each with a from-scratch forward pass in tf ops, and
// readers of a layer's weights.
import * as tf from '@tensorflow/tfjs';

import type { SpectralNormalization } from '../../lib/tfjs';
import { kernelAttribute } from '../../lib/tfjs/kernel';
import type { Tolerance } from './helpers';

/** The parity tolerance: 1e-5. */
export const PARITY: Tolerance = { rtol: 1e-5, atol: 1e-5 };

export interface Kind {
  name: string;
  /** Without the batch dimension. */
  inputShape: number[];
  /** The wrapped layer, with inputShape, its kernel and bias drawn from `seed` (the same seed, the same weights). */
  make(seed: number): tf.layers.Layer;
  /** The attribute holding the normalized weight. */
  kernel: string;
  /** The layer's output from scratch, in tf ops, for a given kernel (and bias): no layer involved. */
  forward?(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor;
  /** Integer inputs (an embedding's ids) below this bound, instead of normal ones. */
  ids?: number;
}

function seeded(seed: number) {
  return {
    kernelInitializer: tf.initializers.glorotNormal({ seed }),
    biasInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.1, seed: seed + 1 }),
  };
}

/** The kinds the issue asks parity for, with their forward passes. */
export const PARITY_KINDS: Kind[] = [
  {
    name: 'dense',
    inputShape: [7],
    make: (seed) => tf.layers.dense({ units: 5, inputShape: [7], ...seeded(seed) }),
    kernel: 'kernel',
    forward: (x, kernel, bias) => tf.add(tf.matMul(x as tf.Tensor2D, kernel as tf.Tensor2D), bias),
  },
  {
    name: 'conv2d',
    inputShape: [6, 6, 3],
    make: (seed) => tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [6, 6, 3], ...seeded(seed) }),
    kernel: 'kernel',
    forward: (x, kernel, bias) => tf.add(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'same'), bias),
  },
  {
    name: 'conv2dTranspose',
    inputShape: [5, 5, 4],
    make: (seed) =>
      tf.layers.conv2dTranspose({ filters: 3, kernelSize: 3, strides: 2, padding: 'same', inputShape: [5, 5, 4], ...seeded(seed) }),
    kernel: 'kernel',
    forward: (x, kernel, bias) =>
      tf.add(tf.conv2dTranspose(x as tf.Tensor4D, kernel as tf.Tensor4D, [x.shape[0], 10, 10, 3], 2, 'same'), bias),
  },
];

/** Every kind the layer wraps. */
export const ALL_KINDS: Kind[] = [
  ...PARITY_KINDS,
  {
    name: 'conv1d',
    inputShape: [9, 3],
    make: (seed) => tf.layers.conv1d({ filters: 4, kernelSize: 3, inputShape: [9, 3], ...seeded(seed) }),
    kernel: 'kernel',
  },
  {
    name: 'conv3d',
    inputShape: [4, 4, 4, 2],
    make: (seed) => tf.layers.conv3d({ filters: 3, kernelSize: 2, inputShape: [4, 4, 4, 2], ...seeded(seed) }),
    kernel: 'kernel',
  },
  {
    name: 'separableConv2d',
    inputShape: [6, 6, 3],
    make: (seed) =>
      tf.layers.separableConv2d({
        filters: 5,
        kernelSize: 3,
        depthMultiplier: 2,
        inputShape: [6, 6, 3],
        depthwiseInitializer: tf.initializers.glorotNormal({ seed }),
        pointwiseInitializer: tf.initializers.glorotNormal({ seed: seed + 2 }),
        biasInitializer: tf.initializers.randomNormal({ mean: 0, stddev: 0.1, seed: seed + 1 }),
      }),
    kernel: 'pointwiseKernel',
  },
  {
    name: 'embedding',
    inputShape: [4],
    make: (seed) =>
      tf.layers.embedding({ inputDim: 10, outputDim: 6, inputShape: [4], embeddingsInitializer: tf.initializers.randomNormal({ seed }) }),
    kernel: 'embeddings',
    ids: 10,
  },
];

/** A batch of inputs for a kind. */
export function inputsFor(kind: Kind, batch: number, seed: number): tf.Tensor {
  const shape = [batch, ...kind.inputShape];
  if (kind.ids === undefined) return tf.randomNormal(shape, 0, 1, 'float32', seed);
  return tf.floor(tf.randomUniform(shape, 0, kind.ids, 'float32', seed));
}

/** A copy of a tensor's values. */
export function values(t: tf.Tensor): Float32Array {
  return Float32Array.from(t.dataSync());
}

/** Copies of a layer's weights, in its order (for SpectralNormalization: the wrapped layer's, then u, v). */
export function weightValues(layer: tf.layers.Layer): Float32Array[] {
  return layer.getWeights().map(values);
}

/** A SpectralNormalization's kernel, u and v, as copies. */
export function snState(layer: SpectralNormalization): { kernel: Float32Array; u: Float32Array; v: Float32Array } {
  const weights = layer.weights;
  const u = weights.find((w) => /\/u$/.test(w.originalName));
  const v = weights.find((w) => /\/v$/.test(w.originalName));
  const kernel = (layer.layer as unknown as Record<string, tf.LayerVariable>)[kernelAttribute(layer.layer)];
  if (!u || !v) throw new Error(`${layer.name} has no u or v weight`);
  return { kernel: values(kernel.read()), u: values(u.read()), v: values(v.read()) };
}
