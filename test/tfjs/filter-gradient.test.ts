// bench/tfjs-filter-gradient.ts's Conv2DBackpropFilter stand-in (im2col + BatchMatMul), which the wasm backend
// trains conv2d layers with in these tests and bench:tfjs, and which bench:tfjs also uses on the cpu backend: the
// filter gradient of tf.conv2d against a float64 sum written here, next to the cpu backend's own kernel, over awkward
// shapes (primes, 1×1 and 4×4 filters, strides 1 to 3, 'same' and 'valid').
import * as assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs';

import { useFilterGradient, wasmBackend } from '../../bench/tfjs-filter-gradient';
import { gaussian, randomInt, testSeed } from '../support/helpers';

type Shape4 = [number, number, number, number];

interface Case {
  x: Shape4; // [n, h, w, c]
  filter: Shape4; // [kh, kw, c, f]
  stride: [number, number];
  pad: 'same' | 'valid';
}

/** dW[kh, kw, c, f] = Σ x[b, oh·sh − top + kh, ow·sw − left + kw, c] · dy[b, oh, ow, f], in float64; and Σ|terms|. */
function exactFilterGradient(c: Case, x: Float64Array, dy: Float64Array, dyShape: number[]) {
  const [n, h, w, channels] = c.x;
  const [kh, kw, , filters] = c.filter;
  const [, oh, ow] = dyShape;
  // TensorFlow's 'same': the padding that gives ceil(in / stride) outputs, the odd one at the bottom and right.
  const before = (input: number, out: number, k: number, s: number) =>
    c.pad === 'valid' ? 0 : Math.floor(Math.max(0, (out - 1) * s + k - input) / 2);
  const top = before(h, oh, kh, c.stride[0]);
  const left = before(w, ow, kw, c.stride[1]);
  const sum = new Float64Array(kh * kw * channels * filters);
  const magnitude = new Float64Array(sum.length);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let p = 0; p < kh; p++)
          for (let q = 0; q < kw; q++) {
            const [r, s] = [i * c.stride[0] - top + p, j * c.stride[1] - left + q];
            if (r < 0 || r >= h || s < 0 || s >= w) continue;
            for (let ch = 0; ch < channels; ch++)
              for (let f = 0; f < filters; f++) {
                const term = x[((b * h + r) * w + s) * channels + ch] * dy[((b * oh + i) * ow + j) * filters + f];
                const at = ((p * kw + q) * channels + ch) * filters + f;
                sum[at] += term;
                magnitude[at] += Math.abs(term);
              }
          }
  return { sum, magnitude };
}

/** tf.conv2d's filter gradient on the current backend, for a loss Σ conv2d(x, W) ⊙ dy. */
function tfFilterGradient(c: Case, x: Float32Array, filter: Float32Array, dy: Float32Array, dyShape: number[]): Float32Array {
  return tf.tidy(() => {
    const input = tf.tensor4d(x, c.x);
    const upstream = tf.tensor4d(dy, dyShape as [number, number, number, number]);
    const loss = (weights: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(input, weights as tf.Tensor4D, c.stride, c.pad), upstream));
    return Float32Array.from(tf.grad(loss)(tf.tensor4d(filter, c.filter)).dataSync());
  });
}

function randomCase(): Case {
  const [h, w] = [randomInt(1, 11), randomInt(1, 11)];
  const [kh, kw] = [randomInt(1, Math.min(4, h)), randomInt(1, Math.min(4, w))];
  const pad = randomInt(0, 1) === 0 ? 'same' : 'valid';
  return {
    x: [randomInt(1, 3), h, w, randomInt(1, 7)],
    filter: [kh, kw, 0, randomInt(1, 9)],
    stride: [randomInt(1, 3), randomInt(1, 3)],
    pad,
  };
}

const CASES: Case[] = [
  // The discriminator's two kinds of layer (3×3 stride 1, 4×4 stride 2, 'same'), small.
  { x: [2, 8, 8, 5], filter: [3, 3, 5, 7], stride: [1, 1], pad: 'same' },
  { x: [2, 9, 7, 3], filter: [4, 4, 3, 6], stride: [2, 2], pad: 'same' },
  { x: [1, 13, 11, 2], filter: [1, 1, 2, 3], stride: [3, 2], pad: 'valid' },
  { x: [3, 5, 5, 1], filter: [2, 3, 1, 1], stride: [1, 2], pad: 'valid' },
];

describe('bench/tfjs-filter-gradient.ts: the Conv2DBackpropFilter stand-in', function () {
  let wasm: string | null = null;
  before(async function () {
    wasm = await wasmBackend();
    if (wasm !== null) console.log(`      (wasm backend: ${wasm})`);
    await tf.setBackend('cpu');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  it("equals a float64 sum, as tfjs cpu's own kernel does, on cpu and wasm, over awkward shapes", async function () {
    this.timeout(120000);
    testSeed();
    const cases = [...CASES, ...Array.from({ length: 12 }, randomCase)];
    for (const c of cases) {
      c.filter[2] = c.x[3];
      const x = Float64Array.from({ length: c.x.reduce((a, b) => a * b) }, gaussian);
      const filter = Float64Array.from({ length: c.filter.reduce((a, b) => a * b) }, gaussian);
      const dyShape = tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.filter) as tf.Tensor4D, c.stride, c.pad).shape);
      const dy = Float64Array.from({ length: dyShape.reduce((a, b) => a * b) }, gaussian);
      // The float32 inputs, and the exact sum of their products.
      const [x32, filter32, dy32] = [Float32Array.from(x), Float32Array.from(filter), Float32Array.from(dy)];
      const exact = exactFilterGradient(c, Float64Array.from(x32), Float64Array.from(dy32), dyShape);
      const what = `x [${c.x}], filter [${c.filter}], strides [${c.stride}], '${c.pad}'`;
      const check = (got: Float32Array, by: string) => {
        assert.equal(got.length, exact.sum.length, `${by}, ${what}: length`);
        // A float32 sum of k terms errs by at most about k·2⁻²⁴·Σ|terms|; the sums here have at most 3·11·11 terms.
        for (let i = 0; i < got.length; i++) {
          const bound = 1e-7 + 363 * 2 ** -24 * exact.magnitude[i];
          assert.ok(Math.abs(got[i] - exact.sum[i]) <= bound, `${by}, ${what}: dW[${i}] = ${got[i]}, exact ${exact.sum[i]}`);
        }
      };
      await tf.setBackend('cpu');
      check(tfFilterGradient(c, x32, filter32, dy32, dyShape), "tfjs cpu's own kernel");
      const restore = useFilterGradient('cpu', { replace: true });
      try {
        check(tfFilterGradient(c, x32, filter32, dy32, dyShape), 'the stand-in on cpu');
      } finally {
        restore();
      }
      if (wasm === null) {
        await tf.setBackend('wasm');
        check(tfFilterGradient(c, x32, filter32, dy32, dyShape), 'the stand-in on wasm');
        await tf.setBackend('cpu');
      }
    }
  });

  it("puts the cpu backend's own kernel back", function () {
    const own = tf.getKernel('Conv2DBackpropFilter', 'cpu');
    const restore = useFilterGradient('cpu', { replace: true });
    assert.notEqual(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc, own?.kernelFunc);
    restore();
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc, own?.kernelFunc);
  });
});
