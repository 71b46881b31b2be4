// Out of memory, injected: the test-only switch makes the nth native scratch allocation of a call fail. Every such
// call either errors with ErrorCode.OutOfMemory and nothing modified, or (where the backend can go on
// without that memory, as the thread pool can) gives the normal bits; the next call works either way.
import * as assert from 'node:assert/strict';

import { ErrorCode, SpectralNormBatch, SpectralNormCoalescer, backendInfo, spectralNormalize } from '../../lib';
import { nativeAddon } from '../../lib/backends';
import { assertSameBytes, poisoned, product, randomArray } from '../support/helpers';

// A layer large enough to be split over two threads (the pool's allocations), small ones side by side, a 1-D one.
const LAYERS = [{ shape: [600, 300] }, { shape: [17, 5, 3] }, { shape: [31, 1] }, { shape: [40] }, { shape: [8, 64], dim: 1 }];

function isOutOfMemory(error: unknown): boolean {
  return error instanceof Error && (error as Error & { code?: string }).code === ErrorCode.OutOfMemory;
}

describe('allocation failure (test-only switch)', function () {
  const addon = nativeAddon();
  before(function () {
    if (!backendInfo().cpu.available || !addon) this.skip();
  });
  afterEach(() => addon?.internal.testFailScratchAllocation(0));

  for (const mode of ['sync', 'async'] as const) {
    it(`each scratch allocation of a ${mode} batch step, failed in turn: an error and nothing modified, or the normal bits`, async () => {
      const native = addon!;
      const weights = LAYERS.map((l) => randomArray('float32', product(l.shape)));
      const step = async (batch: SpectralNormBatch, w: Float32Array[], out: Float32Array[]) =>
        mode === 'sync' ? batch.step(w, { out }) : batch.stepAsync(w, { out });
      const fresh = () => new SpectralNormBatch(LAYERS, { seed: 3, threads: 2, backend: 'cpu' });
      const outs = () => LAYERS.map((l) => poisoned('float32', product(l.shape)) as Float32Array);

      // The reference, and how many scratch allocations one call makes.
      const reference = fresh();
      const expectedOut = outs();
      const before = native.internal.testScratchAllocationCount();
      const expectedSigma = await step(reference, weights as Float32Array[], expectedOut);
      const allocations = native.internal.testScratchAllocationCount() - before;
      assert.ok(allocations >= 5, `only ${allocations} scratch allocations counted`);

      let failed = 0;
      for (let n = 1; n <= allocations; n++) {
        const batch = fresh();
        const u0 = LAYERS.map((_, i) => batch.u(i));
        const v0 = LAYERS.map((_, i) => batch.v(i));
        const w = weights.map((x) => x.slice()) as Float32Array[];
        const out = outs();
        native.internal.testFailScratchAllocation(n);
        let error: unknown = null;
        let sigma: Float64Array | null = null;
        try {
          sigma = await step(batch, w, out);
        } catch (e) {
          error = e;
        }
        native.internal.testFailScratchAllocation(0);
        if (error !== null) {
          failed++;
          assert.ok(isOutOfMemory(error), `allocation ${n}: expected ${ErrorCode.OutOfMemory}, got ${String(error)}`);
          LAYERS.forEach((_, i) => {
            assertSameBytes(w[i], weights[i], `allocation ${n}: weights[${i}]`);
            assertSameBytes(out[i], poisoned('float32', out[i].length), `allocation ${n}: out[${i}]`);
            assertSameBytes(batch.u(i), u0[i], `allocation ${n}: u(${i})`);
            assertSameBytes(batch.v(i), v0[i], `allocation ${n}: v(${i})`);
          });
          sigma = await step(batch, w, out); // the next call works
        }
        assertSameBytes(sigma!, expectedSigma, `allocation ${n}: sigma`);
        LAYERS.forEach((_, i) => {
          assertSameBytes(out[i], expectedOut[i], `allocation ${n}: out[${i}]`);
          assertSameBytes(batch.u(i), reference.u(i), `allocation ${n}: u(${i})`);
        });
      }
      assert.ok(failed > 0, 'no allocation failure surfaced as an error');
    });
  }

  it('a coalesced batch that runs out of memory falls back to running each request alone', async () => {
    const native = addon!;
    const coalescer = new SpectralNormCoalescer({ backend: 'cpu', threads: 2, maxDelayMs: 60_000 });
    const weights = LAYERS.map((l) => randomArray('float32', product(l.shape)));
    const pending = weights.map((w, i) => coalescer.norm(w, LAYERS[i].shape, { dim: LAYERS[i].dim }));
    native.internal.testFailScratchAllocation(1); // the batch's first allocation
    coalescer.flush();
    const results = await Promise.all(pending);
    results.forEach((r, i) => {
      const expected = spectralNormalize(weights[i].slice(), LAYERS[i].shape, { dim: LAYERS[i].dim, backend: 'cpu', threads: 2 });
      assert.equal(r.sigma, expected.sigma, `request ${i}`);
      assertSameBytes(r.v, expected.v, `request ${i}: v`);
    });
    assert.equal(coalescer.stats().batches, 1);
  });
});
