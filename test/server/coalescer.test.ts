// SpectralNormCoalescer: coalesced requests give each caller exactly what its own call would give; one bad request
// fails alone; the queue is bounded.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import {
  ErrorCode,
  type FloatArray,
  SpectralNormCoalescer,
  type SpectralNormResult,
  backendInfo,
  spectralNorm,
  spectralNormAsync,
  spectralNormalize,
} from '../../lib';
import {
  assertClose,
  assertSameBytes,
  backendsUnderTest,
  poisoned,
  product,
  randomArray,
  randomInt,
  toleranceFor,
} from '../support/helpers';

interface Case {
  shape: number[];
  dim?: number;
  dtype: 'float32' | 'float64';
  tolerance?: number;
  maxIterations?: number;
}

// Awkward shapes: 1×n, n×1, primes, 1-D, conv and conv-transpose layouts, one big enough to use several threads.
function awkwardCases(): Case[] {
  return [
    { shape: [1, 97], dtype: 'float32' },
    { shape: [89, 1], dtype: 'float32' },
    { shape: [31, 37], dtype: 'float32' },
    { shape: [13], dtype: 'float32' },
    { shape: [16, 8, 3, 3], dtype: 'float32' },
    { shape: [8, 16, 4, 4], dim: 1, dtype: 'float32' },
    { shape: [7, 11, 5], dim: -1, dtype: 'float32', tolerance: 1e-4 },
    { shape: [randomInt(2, 70), randomInt(2, 70)], dtype: 'float32', maxIterations: 3 },
    { shape: [23, 29], dtype: 'float64' },
    { shape: [64, 576], dtype: 'float64', tolerance: 1e-9 },
    { shape: [600, 300], dtype: 'float32' },
  ];
}

function assertSameResult(actual: SpectralNormResult, expected: SpectralNormResult, what: string): void {
  assert.equal(actual.sigma, expected.sigma, `${what}: sigma`);
  assert.equal(actual.iterations, expected.iterations, `${what}: iterations`);
  assert.equal(actual.converged, expected.converged, `${what}: converged`);
  assert.equal(actual.backend, expected.backend, `${what}: backend`);
  assertSameBytes(actual.u, expected.u, `${what}: u`);
  assertSameBytes(actual.v, expected.v, `${what}: v`);
}

function options(c: Case): { dim?: number; tolerance?: number; maxIterations?: number } {
  return { dim: c.dim, tolerance: c.tolerance, maxIterations: c.maxIterations };
}

describe('SpectralNormCoalescer', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      for (const threads of [1, 2]) {
        it(`coalesced requests get the bits of individual calls (threads ${threads})`, async () => {
          const cases = [...awkwardCases(), ...awkwardCases()];
          const weights = cases.map((c) => randomArray(c.dtype, product(c.shape)));
          const coalescer = new SpectralNormCoalescer({ backend, threads, maxDelayMs: 5 });
          const outs = cases.map((c) => poisoned(c.dtype, product(c.shape)));
          const inPlace = weights.map((w) => w.slice());
          // Fired together: every third divides in place, every third only estimates σ.
          const pending = cases.map((c, i) => {
            if (i % 3 === 0) return coalescer.normalize(inPlace[i], c.shape, options(c));
            if (i % 3 === 1) return coalescer.normalize(weights[i], c.shape, { ...options(c), out: outs[i] });
            return coalescer.norm(weights[i], c.shape, options(c));
          });
          const results = await Promise.all(pending);
          const stats = coalescer.stats();
          assert.equal(stats.requests, cases.length);
          assert.ok(stats.batches < cases.length, `${stats.batches} backend calls for ${cases.length} requests: nothing was coalesced`);
          cases.forEach((c, i) => {
            const what = `request ${i} (${c.dtype} ${c.shape.join('×')})`;
            const out = poisoned(c.dtype, weights[i].length);
            const expected =
              i % 3 === 2
                ? spectralNorm(weights[i], c.shape, { ...options(c), backend, threads })
                : spectralNormalize(weights[i], c.shape, { ...options(c), backend, threads, out });
            assertSameResult(results[i], expected, what);
            if (i % 3 === 0) assertSameBytes(inPlace[i], out, `${what}: in place`);
            if (i % 3 === 1) assertSameBytes(outs[i], out, `${what}: out`);
          });
          await coalescer.close();
        });
      }

      it('one bad request fails only its own promise', async () => {
        const coalescer = new SpectralNormCoalescer({ backend, maxDelayMs: 5 });
        const shape = [24, 40];
        const weights = Array.from({ length: 6 }, () => randomArray('float32', 960));
        const before = weights.map((w) => w.slice());
        weights[2][17] = NaN;
        before[2][17] = NaN;
        const outs = weights.map(() => poisoned('float32', 960));
        const wrongLength = randomArray('float32', 959);
        // A float64 weight of subnormals only: the batch reports it non-finite, and alone it gets the rescaled retry.
        const tiny = randomArray('float64', 35, 1e-310);
        const settled = await Promise.allSettled([
          ...weights.map((w, i) => coalescer.normalize(w, shape, { out: outs[i] })),
          coalescer.normalize(wrongLength, shape),
          coalescer.norm(tiny, [5, 7]),
          coalescer.normalize(weights[0], shape, { out: outs[0].subarray(1) }),
        ]);
        settled.forEach((s, i) => {
          if (i === 2 || i === 6 || i === 8) assert.equal(s.status, 'rejected', `request ${i} should fail`);
          else assert.equal(s.status, 'fulfilled', `request ${i}: ${s.status === 'rejected' ? String(s.reason) : ''}`);
        });
        const reason = (i: number) => (settled[i] as PromiseRejectedResult).reason as Error;
        assert.ok(reason(2) instanceof RangeError && /weight contains NaN or Infinity/.test(reason(2).message), String(reason(2)));
        assert.ok(reason(6) instanceof RangeError && /^weight has 959 elements/.test(reason(6).message), String(reason(6)));
        assert.ok(reason(8) instanceof RangeError && /^options\.out/.test(reason(8).message), String(reason(8)));
        assert.match(reason(2).stack ?? '', /coalescer\.test/, "the rejection carries the caller's stack");
        assertSameBytes(outs[2], poisoned('float32', 960), "the bad request's out is untouched");
        weights.forEach((w, i) => assertSameBytes(w, before[i], `weights[${i}]`));
        for (const i of [0, 1, 3, 4, 5]) {
          const out = poisoned('float32', 960);
          const expected = spectralNormalize(weights[i], shape, { backend, out });
          assertSameResult((settled[i] as PromiseFulfilledResult<SpectralNormResult>).value, expected, `request ${i}`);
          assertSameBytes(outs[i], out, `out ${i}`);
        }
        const tinyResult = (settled[7] as PromiseFulfilledResult<SpectralNormResult>).value;
        assertSameResult(tinyResult, await spectralNormAsync(tiny, [5, 7], { backend }), 'subnormal float64 request');
        assert.ok(tinyResult.sigma > 0);
      });

      for (const maxInFlight of [1, 4]) {
        it(`requests that write shared memory run one after another, as individual calls would (maxInFlight ${maxInFlight})`, async () => {
          // Large enough that a batch in flight is still writing when the next one could start.
          const coalescer = new SpectralNormCoalescer({ backend, maxDelayMs: 5, maxInFlight });
          const shape = [300, 700];
          const original = randomArray('float32', 300 * 700);
          const shared = original.slice();
          const other = randomArray('float32', 300 * 700);
          const results = await Promise.all([
            coalescer.normalize(shared, shape),
            coalescer.normalize(other, shape),
            coalescer.normalize(shared, shape), // divides the already divided weight
            coalescer.norm(shared.subarray(100, 200), [10, 10]), // reads what the two before it write
          ]);
          const expected = original.slice();
          const first = spectralNormalize(expected, shape, { backend });
          const second = spectralNormalize(expected, shape, { backend });
          const third = spectralNorm(expected.subarray(100, 200), [10, 10], { backend });
          assertSameResult(results[0], first, 'first in-place request');
          assertSameResult(results[2], second, 'second in-place request');
          assertSameResult(results[3], third, 'reader after the writers');
          assertSameBytes(shared, expected, 'the shared weight');
          assert.ok(Math.abs(results[2].sigma - 1) < 1e-3, `σ of W/σ is 1, got ${results[2].sigma}`);
          assert.ok(coalescer.stats().batches >= 3, 'the conflicting requests were not put in separate batches');
        });
      }
    });
  }

  it('is bounded: beyond maxQueue waiting requests it rejects with a clear error, and recovers', async () => {
    const coalescer = new SpectralNormCoalescer({ maxQueue: 4, maxDelayMs: 20 });
    const weights = Array.from({ length: 6 }, () => randomArray('float32', 64));
    const settled = await Promise.allSettled(weights.map((w) => coalescer.norm(w, [8, 8])));
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected'],
    );
    const error = (settled[4] as PromiseRejectedResult).reason as Error & { code?: string };
    assert.equal(error.code, ErrorCode.QueueFull);
    assert.match(error.message, /queue is full \(4 requests waiting\); retry later/);
    assert.equal(coalescer.stats().rejected, 2);
    const again = await coalescer.norm(weights[5], [8, 8]);
    assert.equal(again.sigma, spectralNorm(weights[5], [8, 8]).sigma);
  });

  it('dispatches as soon as maxBatchSize requests wait, and in batches of at most that size', async () => {
    const coalescer = new SpectralNormCoalescer({ maxBatchSize: 3, maxDelayMs: 60_000 });
    const weights = Array.from({ length: 7 }, () => randomArray('float32', 50));
    const first = weights.slice(0, 6).map((w) => coalescer.norm(w, [5, 10]));
    await Promise.all(first); // a 60 s window would time the test out
    const last = coalescer.norm(weights[6], [5, 10]);
    coalescer.flush();
    await last;
    assert.equal(coalescer.stats().largestBatch, 3);
    assert.equal(coalescer.stats().batches, 3);
  });

  it('close() settles what is waiting and refuses new requests', async () => {
    const coalescer = new SpectralNormCoalescer({ maxDelayMs: 60_000 });
    const w = randomArray('float32', 12);
    const pending = coalescer.norm(w, [3, 4]);
    await coalescer.close();
    assert.ok((await pending).sigma > 0);
    await assert.rejects(coalescer.norm(w, [3, 4]), (e: Error & { code?: string }) => e.code === ErrorCode.Closed);
  });

  it('bad options get a TypeError or RangeError naming them; async requests never throw synchronously', async () => {
    assert.throws(() => new SpectralNormCoalescer({ maxBatchSize: 0 }), /^RangeError: options\.maxBatchSize/);
    assert.throws(() => new SpectralNormCoalescer({ maxDelayMs: -1 }), /^RangeError: options\.maxDelayMs/);
    assert.throws(() => new SpectralNormCoalescer({ maxQueue: 1.5 }), /^RangeError: options\.maxQueue/);
    assert.throws(() => new SpectralNormCoalescer({ backend: 'tpu' as never }), /^RangeError: options\.backend/);
    assert.throws(
      () => new SpectralNormCoalescer({ maxBatch: 3 } as never),
      /^TypeError: options has an unknown key 'maxBatch'|options.*maxBatch/,
    );
    const coalescer = new SpectralNormCoalescer();
    const w: FloatArray = randomArray('float32', 12);
    await assert.rejects(
      coalescer.normalize(w, [3, 4], { threads: 2 } as never),
      /^TypeError: options\.threads is set on the SpectralNormCoalescer/,
    );
    await assert.rejects(coalescer.normalize(w, [3, 5]), /^RangeError: weight has 12 elements/);
    await assert.rejects(coalescer.normalize(w, [3, 4], { tolerance: -1 }), /^RangeError: options\.tolerance/);
    await assert.rejects(coalescer.normalize([1, 2] as never, [2]), /^TypeError: weight/);
    assert.equal(coalescer.stats().requests, 0);
  });

  it("checks a request's own device against the coalescer's backend, as a call of its own would", async () => {
    // The coalescer checks its backend once; a request that names a device still gets that device checked.
    const w: FloatArray = randomArray('float32', 12);
    const cpu = new SpectralNormCoalescer({ backend: 'cpu' });
    await assert.rejects(
      cpu.normalize(w, [3, 4], { device: 0 }),
      (e: Error) =>
        e instanceof RangeError && /^options\.device applies only to the cuda backend, but options\.backend is 'cpu'/.test(e.message),
    );
    const auto = new SpectralNormCoalescer();
    await assert.rejects(auto.norm(w, [3, 4], { device: -1 }), /^RangeError: options\.device must be a non-negative integer/);
    assert.equal(cpu.stats().requests + auto.stats().requests, 0);
    await Promise.all([cpu.close(), auto.close()]);
  });

  it("never batches requests for different devices together (the CUDA emulation's SN_EMULATION_DEVICES=2)", function () {
    const cuda = backendInfo().cuda;
    // Only the emulated build (npm run test:cuda-emulated) can pretend to have several devices.
    if (!cuda.available || !/emulation/i.test(cuda.devices[0]?.name ?? '')) this.skip();
    this.timeout(5 * 60 * 1000);
    const child = path.resolve(__dirname, '..', 'children', 'coalescer-devices.js');
    const r = spawnSync(process.execPath, [child], { env: { ...process.env, SN_EMULATION_DEVICES: '2' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const runs: Record<string, { stats: { batches: number; largestBatch: number }; sigma: number[]; alone: number[] }> = JSON.parse(
      r.stdout,
    );
    for (const [backend, run] of Object.entries(runs)) {
      // Eight requests alternating devices 0 and 1, flushed at once: one batch per device, never one of eight.
      assert.equal(run.stats.batches, 2, `${backend}: batches`);
      assert.equal(run.stats.largestBatch, 4, `${backend}: largest batch`);
      // Pinned, the bits of each call alone; under 'auto' the batch's backend may differ from a call's (to rounding).
      if (backend === 'cuda') assert.deepEqual(run.sigma, run.alone, `${backend}: σ as each call alone gives it`);
      else run.sigma.forEach((s, i) => assertClose(s, run.alone[i], toleranceFor('float32'), `${backend}: σ of request ${i}`));
    }
  });
});
