// Where we are better than PyTorch: NaN, ±Infinity or an overflow throws a RangeError naming the layer and modifies
// nothing (a batch is all or nothing); a zero matrix (σ ≤ eps) is left as it is, where PyTorch returns NaN.
import * as assert from 'node:assert/strict';

import { SpectralNormBatch, SpectralNormalizer, spectralNorm, spectralNormalize, spectralNormalizeAsync } from '../../lib';
import { assertClose, assertSameBytes, backendsUnderTest, poisoned, randomArray, randomInt, toleranceFor } from '../support/helpers';
import { permutedMatrix, referenceDivide, referenceStep } from '../support/reference';

const NON_FINITE = /contains NaN or Infinity, or overflowed during power iteration; nothing was modified/;

function isNonFiniteError(name: RegExp) {
  return (error: unknown) => error instanceof RangeError && NON_FINITE.test(error.message) && name.test(error.message);
}

describe('non-finite weights and zero matrices', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      for (const dtype of ['float32', 'float64'] as const) {
        for (const bad of [NaN, Infinity, -Infinity]) {
          for (const update of [true, false]) {
            it(`${dtype}: ${bad} in a weight throws in ${update ? 'training' : 'eval'} mode and changes nothing`, () => {
              const shape = [randomInt(1, 20), randomInt(1, 20), 3];
              const n = shape[0] * shape[1] * 3;
              const sn = new SpectralNormalizer(shape, { dtype, dim: randomInt(0, 2), backend });
              const weight = randomArray(dtype, n);
              weight[randomInt(0, n - 1)] = bad;
              const out = poisoned(dtype, n);
              const before = { weight: weight.slice(), out: out.slice(), u: sn.u, v: sn.v };
              assert.throws(() => sn.step(weight, { update, out }), isNonFiniteError(/^weight /));
              assert.throws(() => sn.step(weight, { update }), isNonFiniteError(/^weight /)); // in place
              assert.throws(() => sn.warmup(weight, 3), isNonFiniteError(/^weight /));
              assertSameBytes(weight, before.weight, 'weight');
              assertSameBytes(out, before.out, 'out');
              assertSameBytes(sn.u, before.u, 'u');
              assertSameBytes(sn.v, before.v, 'v');
            });
          }
        }

        it(`${dtype}: a batch with one bad layer modifies no layer at all`, () => {
          const layers = [{ shape: [5, 7], name: 'a' }, { shape: [4, 3, 3], name: 'b' }, { shape: [9], name: 'c' }, { shape: [6, 2] }];
          const batch = new SpectralNormBatch(layers, { dtype, backend, iterations: 2 });
          const weights = layers.map((l) =>
            randomArray(
              dtype,
              l.shape.reduce((a, b) => a * b, 1),
            ),
          );
          weights[1][17] = NaN;
          const before = weights.map((w) => w.slice());
          const vectors = layers.map((_, i) => [batch.u(i), batch.v(i)]);
          assert.throws(() => batch.step(weights), isNonFiniteError(/^weights\[1\] \(layer 'b'\) /));
          weights.forEach((w, i) => assertSameBytes(w, before[i], `weights[${i}]`));
          vectors.forEach(([u, v], i) => {
            assertSameBytes(batch.u(i), u, `u(${i})`);
            assertSameBytes(batch.v(i), v, `v(${i})`);
          });
          // The same batch works once the weight is fixed.
          weights[1][17] = 0.5;
          const sigmas = batch.step(weights);
          assert.ok(sigmas.every((s) => Number.isFinite(s) && s > 0));
        });

        it(`${dtype}: an overflow during the iteration throws and changes nothing`, () => {
          // float32: σ is finite in double but beyond float32's range. float64: Wᵀ(W v) overflows double.
          const huge = dtype === 'float32' ? 3e38 : 1e200;
          const weight = dtype === 'float32' ? new Float32Array(16).fill(huge) : new Float64Array(16).fill(huge);
          const sn = new SpectralNormalizer([4, 4], { dtype, backend });
          const before = { weight: weight.slice(), u: sn.u, v: sn.v };
          assert.throws(() => sn.step(weight), isNonFiniteError(/^weight /));
          assertSameBytes(weight, before.weight, 'weight');
          assertSameBytes(sn.u, before.u, 'u');
          assertSameBytes(sn.v, before.v, 'v');
        });

        it(`${dtype}: NaN in one-shot calls throws and changes nothing`, async () => {
          const weight = randomArray(dtype, 30);
          weight[29] = NaN;
          const before = weight.slice();
          assert.throws(() => spectralNorm(weight, [5, 6], { backend }), isNonFiniteError(/^weight /));
          assert.throws(() => spectralNormalize(weight, [5, 6], { backend }), isNonFiniteError(/^weight /));
          await assert.rejects(spectralNormalizeAsync(weight, [5, 6], { backend }), isNonFiniteError(/^weight /));
          assertSameBytes(weight, before, 'weight');
        });

        it(`${dtype}: a zero matrix is left as it is (PyTorch gives NaN), and the next step works normally`, () => {
          const shape = [7, 5];
          const sn = new SpectralNormalizer(shape, { dtype, backend });
          const u0 = sn.u;
          const v0 = sn.v;
          const zero = dtype === 'float32' ? new Float32Array(35) : new Float64Array(35);
          const out = poisoned(dtype, 35);
          assert.equal(sn.step(zero, { out }), 0);
          assertSameBytes(out, zero, 'out receives W unchanged');
          assert.equal(sn.step(zero), 0);
          assert.ok(zero.every((x) => x === 0));
          assert.equal(sn.step(zero, { update: false }), 0);
          assertSameBytes(sn.u, u0, 'u kept');
          assertSameBytes(sn.v, v0, 'v kept');

          const weight = randomArray(dtype, 35);
          const ref = referenceStep(permutedMatrix(weight, shape, 0), u0, v0, 1, 1e-12, false, dtype);
          const next = poisoned(dtype, 35);
          const sigma = sn.step(weight, { out: next });
          assertClose(sigma, ref.sigma, toleranceFor(dtype), 'sigma after the zero step');
          assertClose(next, referenceDivide(weight, sigma, dtype), { rtol: 0, atol: 0 }, 'W/σ after the zero step');
        });

        it(`${dtype}: σ below eps leaves the weight unchanged and reports σ as computed`, () => {
          const weight = randomArray(dtype, 12, 1e-14);
          const before = weight.slice();
          const sn = new SpectralNormalizer([3, 4], { dtype, backend, eps: 1e-12 });
          const u0 = sn.u;
          const sigma = sn.step(weight);
          assert.ok(sigma > 0 && sigma <= 1e-12, `σ ${sigma}`);
          assertSameBytes(weight, before, 'weight');
          assertSameBytes(sn.u, u0, 'u');
        });

        it(`${dtype}: one-shot functions leave a zero matrix as it is and report σ = 0`, () => {
          const zero = dtype === 'float32' ? new Float32Array(20) : new Float64Array(20);
          const r = spectralNorm(zero, [4, 5], { backend });
          assert.equal(r.sigma, 0);
          assert.ok(r.converged);
          const out = poisoned(dtype, 20);
          assert.equal(spectralNormalize(zero, [4, 5], { backend, out }).sigma, 0);
          assertSameBytes(out, zero, 'out receives W unchanged');
        });

        it(`${dtype}: a batch mixes zero and normal layers: the zero one is kept, the others divided`, () => {
          const batch = new SpectralNormBatch([{ shape: [3, 3] }, { shape: [4, 2] }], { dtype, backend });
          const zero = dtype === 'float32' ? new Float32Array(9) : new Float64Array(9);
          const weight = randomArray(dtype, 8);
          const copy = weight.slice();
          const sigmas = batch.step([zero, weight]);
          assert.equal(sigmas[0], 0);
          assert.ok(zero.every((x) => x === 0));
          assertClose(weight, referenceDivide(copy, sigmas[1], dtype), { rtol: 0, atol: 0 }, 'layer 1');
        });
      }

      it('float64 weights at 1e±300 and subnormal ones: one-shot σ scales exactly, no spurious error', () => {
        const base = randomArray('float64', 24);
        const reference = spectralNorm(base, [4, 6], { backend, tolerance: 1e-12 }).sigma;
        for (const scale of [2 ** 990, 2 ** -1000, 2 ** -1060]) {
          const w = base.map((x) => x * scale);
          const sigma = spectralNorm(w, [4, 6], { backend, tolerance: 1e-12 }).sigma;
          // Subnormal entries keep fewer bits, so compare loosely there.
          const rtol = scale < 2 ** -1022 ? 1e-3 : 1e-12;
          assert.ok(Math.abs(sigma / scale - reference) <= rtol * reference, `scale ${scale}: ${sigma / scale} vs ${reference}`);
        }
      });
    });
  }
});
