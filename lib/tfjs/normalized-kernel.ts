// W/σ as a tensor the wrapped layer computes with, and its gradient with respect to W: with W = reshape(kernel,
// [-1, units]), σ = vᵀ W u, u and v held constant, |σ| ≤ eps leaving W as it is. Two ways to the same function:
// tf ops and tfjs's autodiff, or the engine's W/σ with the gradient in closed form on the host.
import * as tf from '@tensorflow/tfjs';

/** One engine step's result for a layer: W/σ, σ, and the u and v that gave them. */
export interface EngineNormalized {
  values: Float32Array;
  sigma: number;
  u: Float32Array;
  v: Float32Array;
}

/** W/σ in tf ops: σ through tf.matMul, the division's and σ's gradients from tfjs's autodiff. */
export function divideBySigma(kernel: tf.Tensor, u: tf.Tensor, v: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const units = kernel.shape[kernel.rank - 1];
    const matrix = tf.reshape(kernel, [-1, units]);
    const sigma = tf.sum(tf.mul(tf.matMul(matrix, tf.reshape(u, [units, 1])), tf.reshape(v, [-1, 1])));
    return tf.div(kernel, divisorOf(sigma, eps));
  });
}

/**
 * σ, or 1 where |σ| ≤ eps. A custom gradient (1 or 0), because a comparison on the gradient's path would stop
 * tf.grad: tfjs has no gradient for Greater.
 */
function divisorOf(sigma: tf.Tensor, eps: number): tf.Tensor {
  const above = (s: tf.Tensor) => tf.greater(tf.abs(s), eps);
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [s, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([s]);
    return {
      value: tf.where(above(s), s, tf.onesLike(s)),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => tf.where(above(saved), dy, tf.zerosLike(dy)),
    };
  })(sigma);
}

/**
 * The engine's W/σ as a tensor of `kernel`'s graph: its value is `normalized.values`, its gradient
 * normalizedKernelGradient(), so tf.grad and the optimizers reach the kernel exactly as through divideBySigma.
 */
export function engineDivided(kernel: tf.Tensor, normalized: EngineNormalized, eps: number): tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const shape = (args[0] as tf.Tensor).shape;
    return {
      value: tf.tensor(normalized.values, shape, 'float32'),
      gradFunc: (dy: tf.Tensor) => tf.tensor(normalizedKernelGradient(dy.dataSync() as Float32Array, normalized, eps), shape, 'float32'),
    };
  })(kernel);
}

/**
 * d loss / dW from G = d loss / d(W/σ), with σ = vᵀ W u and u, v constant: (G − ⟨G, W/σ⟩·v uᵀ) / σ, in the kernel's
 * layout (row o of reshape(W, [-1, units]) pairs with v[o], column r with u[r]). Where |σ| ≤ eps, W/σ was W: G.
 * Two passes over G, where tfjs's autodiff of divideBySigma takes some six tensor ops over W's size.
 */
export function normalizedKernelGradient(upstream: Float32Array, normalized: EngineNormalized, eps: number): Float32Array {
  const { values, sigma, u, v } = normalized;
  if (!(Math.abs(sigma) > eps)) return Float32Array.from(upstream);
  let dot = 0;
  for (let i = 0; i < upstream.length; i++) dot += upstream[i] * values[i];
  const out = new Float32Array(upstream.length);
  const units = u.length;
  for (let o = 0, i = 0; o < v.length; o++) {
    const scale = dot * v[o];
    for (let r = 0; r < units; r++, i++) out[i] = (upstream[i] - scale * u[r]) / sigma;
  }
  return out;
}
