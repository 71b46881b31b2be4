// The async twins: the same bits as the sync calls, in call order per object, off the event loop on the native
// backend.
import * as assert from 'node:assert/strict';

import {
  SpectralNormBatch,
  SpectralNormalizer,
  backendInfo,
  spectralNorm,
  spectralNormAsync,
  spectralNormalize,
  spectralNormalizeAsync,
} from '../../lib';
import { assertSameBytes, backendsUnderTest, poisoned, randomArray } from '../support/helpers';

describe('async', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      it('stepAsync and warmupAsync give the same bits as step and warmup', async () => {
        for (const dtype of ['float32', 'float64'] as const) {
          const shape = [37, 5, 3];
          const options = { dtype, dim: 1, seed: 11, iterations: 2, backend };
          const sync = new SpectralNormalizer(shape, options);
          const async_ = new SpectralNormalizer(shape, options);
          const weight = randomArray(dtype, 555);
          assert.equal(await async_.warmupAsync(weight, 4), sync.warmup(weight, 4));
          const outSync = poisoned(dtype, 555);
          const outAsync = poisoned(dtype, 555);
          assert.equal(await async_.stepAsync(weight, { out: outAsync }), sync.step(weight, { out: outSync }));
          assert.equal(
            await async_.stepAsync(weight, { out: outAsync, update: false }),
            sync.step(weight, { out: outSync, update: false }),
          );
          assertSameBytes(outAsync, outSync, 'out');
          assertSameBytes(async_.u, sync.u, 'u');
          assertSameBytes(async_.v, sync.v, 'v');
        }
      });

      it('batch stepAsync gives the same bits as step, in place', async () => {
        const layers = [{ shape: [8, 3, 3] }, { shape: [5] }, { shape: [300, 20], dim: 1 }];
        const a = new SpectralNormBatch(layers, { seed: 5, backend });
        const b = new SpectralNormBatch(layers, { seed: 5, backend });
        const wa = layers.map((l) =>
          randomArray(
            'float32',
            l.shape.reduce((x, y) => x * y, 1),
          ),
        );
        const wb = wa.map((w) => w.slice());
        assertSameBytes(await a.stepAsync(wa), b.step(wb), 'sigmas');
        wa.forEach((w, i) => assertSameBytes(w, wb[i], `weights[${i}]`));
      });

      it('spectralNormAsync and spectralNormalizeAsync give the same results as the sync calls', async () => {
        const weight = randomArray('float64', 40 * 30);
        const sync = spectralNorm(weight, [40, 30], { backend });
        const async_ = await spectralNormAsync(weight, [40, 30], { backend });
        assert.equal(async_.sigma, sync.sigma);
        assert.equal(async_.iterations, sync.iterations);
        assertSameBytes(async_.v, sync.v, 'v');
        const out1 = poisoned('float64', 1200);
        const out2 = poisoned('float64', 1200);
        spectralNormalize(weight, [40, 30], { backend, out: out1 });
        await spectralNormalizeAsync(weight, [40, 30], { backend, out: out2 });
        assertSameBytes(out2, out1, 'out');
      });

      it('operations on one object run in call order and equal running them one by one', async () => {
        const shape = [64, 48];
        const weights = Array.from({ length: 6 }, () => randomArray('float32', 64 * 48));
        const queued = new SpectralNormalizer(shape, { seed: 1, backend });
        const serial = new SpectralNormalizer(shape, { seed: 1, backend });
        const outs = weights.map(() => poisoned('float32', 64 * 48));
        // Fired together, not awaited in between.
        const sigmas = await Promise.all(weights.map((w, i) => queued.stepAsync(w, { out: outs[i], update: i % 3 !== 2 })));
        weights.forEach((w, i) => {
          const out = poisoned('float32', 64 * 48);
          assert.equal(sigmas[i], serial.step(w, { out, update: i % 3 !== 2 }), `step ${i}`);
          assertSameBytes(outs[i], out, `out ${i}`);
        });
        assertSameBytes(queued.u, serial.u, 'u');
      });

      it('a sync call while an async one is in flight throws, and changes nothing', async () => {
        const sn = new SpectralNormalizer([20, 20], { backend });
        const weight = randomArray('float32', 400);
        const pending = sn.stepAsync(weight.slice());
        const before = weight.slice();
        assert.throws(() => sn.step(weight), /step\(\) was called while an async operation is in flight; await it first/);
        await pending;
        assertSameBytes(weight, before, 'weight');
        assert.ok(Number.isFinite(sn.step(weight)));
      });

      it("a failing async step rejects with a RangeError carrying the caller's stack", async () => {
        const sn = new SpectralNormalizer([4, 4], { backend });
        const weight = randomArray('float32', 16);
        weight[3] = NaN;
        const error = await sn.stepAsync(weight).then(
          () => assert.fail('expected a rejection'),
          (e: unknown) => e as Error,
        );
        assert.ok(error instanceof RangeError);
        assert.match(error.stack ?? '', /async\.test/);
        // The queue goes on after a failure.
        weight[3] = 1;
        assert.ok((await sn.stepAsync(weight)) > 0);
      });
    });
  }

  it('the event loop keeps ticking during a large native async step', async function () {
    if (!backendInfo().cpu.available) this.skip();
    // A 1024×9216 float32 layer and 150 iterations (a few hundred ms): long enough to measure, on one thread so
    // that libuv's pool does the waiting and not this thread.
    const shape = [1024, 9216];
    const weight = randomArray('float32', 1024 * 9216, 0.01);
    const sn = new SpectralNormalizer(shape, { backend: 'cpu', iterations: 150, threads: 1 });
    let maxGap = 0;
    let ticks = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 1);
    const start = performance.now();
    await sn.stepAsync(weight);
    const duration = performance.now() - start;
    clearInterval(timer);
    console.log(`      async step ${duration.toFixed(0)} ms; event loop: ${ticks} ticks, longest gap ${maxGap.toFixed(1)} ms`);
    assert.ok(duration > 100, `the step took only ${duration} ms, too short to tell`);
    assert.ok(maxGap < 50, `the event loop stalled for ${maxGap} ms during a ${duration} ms step`);
    assert.ok(ticks > duration / 20, `only ${ticks} ticks in ${duration} ms`);
  });
});
