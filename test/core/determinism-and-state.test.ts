// Seeds, determinism, batches against normalizers, and state round trips.
import * as assert from 'node:assert/strict';

import { type BackendName, SpectralNormBatch, SpectralNormalizer, spectralNorm } from '../../lib';
import { assertSameBytes, backendsUnderTest, poisoned, product, randomArray, randomInt } from '../support/helpers';

describe('determinism and state', () => {
  it('one seed gives bit-identical, unit-norm start vectors on every backend', () => {
    const backends = backendsUnderTest();
    for (const dtype of ['float32', 'float64'] as const) {
      for (const seed of [0, 1, -7, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
        const vectors = backends.map((backend) => new SpectralNormalizer([13, 4, 3], { seed, dtype, dim: 1, backend }));
        for (const sn of vectors.slice(1)) {
          assertSameBytes(sn.u, vectors[0].u, `u, seed ${seed}`);
          assertSameBytes(sn.v, vectors[0].v, `v, seed ${seed}`);
        }
        const norm = Math.hypot(...vectors[0].u);
        assert.ok(Math.abs(norm - 1) < 1e-6, `‖u‖ = ${norm}`);
      }
    }
    const a = new SpectralNormalizer([5, 5], { seed: 1 });
    const b = new SpectralNormalizer([5, 5], { seed: 2 });
    assert.notDeepEqual(Array.from(a.u), Array.from(b.u));
  });

  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      it('the same seed and inputs give bit-identical results run to run, including threaded layers', () => {
        for (const shape of [
          [23, 17],
          [700, 400],
          [40, 90, 80],
        ]) {
          const weight = randomArray('float32', product(shape));
          const run = () => {
            const sn = new SpectralNormalizer(shape, { seed: 9, iterations: 3, dim: shape.length - 1, backend, threads: 2 });
            const out = poisoned('float32', weight.length);
            const sigma = sn.step(weight, { out });
            return { sigma, out, u: sn.u, v: sn.v, estimate: spectralNorm(weight, shape, { backend, threads: 2 }) };
          };
          const first = run();
          const second = run();
          assert.equal(second.sigma, first.sigma);
          assertSameBytes(second.out, first.out, 'out');
          assertSameBytes(second.u, first.u, 'u');
          assertSameBytes(second.v, first.v, 'v');
          assert.equal(second.estimate.sigma, first.estimate.sigma);
          assertSameBytes(second.estimate.v, first.estimate.v, 'estimate v');
        }
      });

      it('a batch gives each layer the same bits as a normalizer of its own (a batch of one included)', () => {
        const specs = Array.from({ length: 12 }, (_, i) => {
          const ndim = randomInt(1, 4);
          const shape = Array.from({ length: ndim }, () => randomInt(1, ndim === 2 ? 60 : 9));
          return { shape, dim: randomInt(0, ndim - 1), seed: 100 + i };
        });
        specs.push({ shape: [640, 520], dim: 0, seed: 7 }); // large enough to be split over threads
        for (const dtype of ['float32', 'float64'] as const) {
          for (const legacy of [false, true]) {
            const options = { dtype, legacy, iterations: 2, backend: backend as BackendName, threads: 2 };
            const weights = specs.map((s) => randomArray(dtype, product(s.shape)));
            const batchWeights = weights.map((w) => w.slice());
            const batch = new SpectralNormBatch(specs, options);
            batch.warmup(batchWeights, 3);
            const sigmas = batch.step(batchWeights);
            specs.forEach((spec, i) => {
              for (const alone of [
                new SpectralNormalizer(spec.shape, { ...options, dim: spec.dim, seed: spec.seed }),
                new SpectralNormBatch([spec], options),
              ]) {
                const w = weights[i].slice();
                let sigma: number;
                if (alone instanceof SpectralNormalizer) {
                  alone.warmup(w, 3);
                  sigma = alone.step(w);
                  assertSameBytes(alone.u, batch.u(i), `layer ${i} u`);
                } else {
                  alone.warmup([w], 3);
                  sigma = alone.step([w])[0];
                  assertSameBytes(alone.u(0), batch.u(i), `layer ${i} u (batch of one)`);
                }
                assert.equal(sigma, sigmas[i], `layer ${i} σ`);
                assertSameBytes(w, batchWeights[i], `layer ${i} W/σ`);
              }
            });
          }
        }
      });

      it('state() survives JSON and fromState continues bit for bit', () => {
        for (const dtype of ['float32', 'float64'] as const) {
          const shape = [6, 4, 3];
          const sn = new SpectralNormalizer(shape, {
            dtype,
            dim: 2,
            iterations: 2,
            eps: 1e-9,
            legacy: true,
            precision: 'float64',
            backend,
          });
          const w = randomArray(dtype, 72);
          sn.step(w.slice());
          const restored = SpectralNormalizer.fromState(JSON.parse(JSON.stringify(sn.state())), { backend });
          assert.deepEqual(restored.state(), sn.state());
          assert.equal(restored.state().precision, 'float64');
          const a = w.slice();
          const b = w.slice();
          assert.equal(restored.step(a), sn.step(b));
          assertSameBytes(a, b, 'W/σ');
          assertSameBytes(restored.u, sn.u, 'u');

          const batch = new SpectralNormBatch(
            [
              { shape: [3, 5], name: 'x' },
              { shape: [7], dim: -1 },
            ],
            { dtype, backend, seed: 3 },
          );
          const weights = [randomArray(dtype, 15), randomArray(dtype, 7)];
          batch.step(weights.map((x) => x.slice()));
          const again = SpectralNormBatch.fromState(JSON.parse(JSON.stringify(batch.state())), { backend });
          assert.deepEqual(again.state(), batch.state());
          const one = weights.map((x) => x.slice());
          const two = weights.map((x) => x.slice());
          assertSameBytes(again.step(one), batch.step(two), 'σ');
          one.forEach((x, i) => assertSameBytes(x, two[i], `weights[${i}]`));
        }
      });

      it("a state saved before the precision option existed restores with the default, 'mixed'", () => {
        const state = new SpectralNormalizer([5, 3], { backend, seed: 2, precision: 'float64' }).state();
        delete state.precision;
        assert.equal(SpectralNormalizer.fromState(state, { backend }).state().precision, 'mixed');
        const batchState = new SpectralNormBatch([{ shape: [5, 3] }], { backend, seed: 2 }).state();
        assert.equal(batchState.precision, 'mixed');
        delete batchState.precision;
        assert.equal(SpectralNormBatch.fromState(batchState, { backend }).state().precision, 'mixed');
      });

      it('u and v getters are copies: writing to them does not change the state', () => {
        const sn = new SpectralNormalizer([4, 4], { backend, seed: 1 });
        const u = sn.u;
        u.fill(0);
        assert.ok(sn.u.some((x) => x !== 0));
        const batch = new SpectralNormBatch([{ shape: [4, 4] }], { backend, seed: 1 });
        batch.v(0).fill(0);
        assert.ok(batch.v(0).some((x) => x !== 0));
      });

      it('each step returns its own σ array: a later step (sync or async) does not overwrite an earlier one', async () => {
        const batch = new SpectralNormBatch([{ shape: [5, 3] }, { shape: [4] }], { backend, seed: 1 });
        const first = batch.step([randomArray('float32', 15), randomArray('float32', 4)]);
        const kept = Array.from(first);
        const second = batch.step([randomArray('float32', 15, 1e3), randomArray('float32', 4, 1e3)]);
        const third = await batch.stepAsync([randomArray('float32', 15, 1e6), randomArray('float32', 4, 1e6)]);
        assert.deepEqual(Array.from(first), kept);
        assert.notEqual(first, second);
        assert.notEqual(second, third);
        assert.ok(third[1] > 30 * second[1] && second[1] > 30 * kept[1], `${kept} ${Array.from(second)} ${Array.from(third)}`);
      });

      it('start vectors given as u and v are copied, not aliased', () => {
        const u = new Float32Array([1, 0, 0]);
        const sn = new SpectralNormalizer([3, 2], { backend, u, v: [0.6, 0.8] });
        u[0] = 5;
        assert.equal(sn.u[0], 1);
      });
    });
  }

  it('thread counts agree within rounding (results are deterministic per thread count)', function () {
    if (!backendsUnderTest().includes('cpu')) this.skip();
    const shape = [900, 700];
    const weight = randomArray('float32', 900 * 700);
    const results = [1, 2, 3].map((threads) => {
      const sn = new SpectralNormalizer(shape, { seed: 4, iterations: 3, threads, backend: 'cpu' });
      return sn.step(weight.slice());
    });
    for (const s of results) assert.ok(Math.abs(s - results[0]) <= 1e-6 * results[0], `${s} vs ${results[0]}`);
  });
});
