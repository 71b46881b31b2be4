// Server-grade concurrency: the event loop keeps running under load, one object's operations are serialized while
// independent objects run side by side, and the addon works in several worker threads at once.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';

import { SpectralNormBatch, SpectralNormalizer, backendInfo } from '../../lib';
import { assertSameBytes, backendsUnderTest, poisoned, product, randomArray } from '../support/helpers';

const CHILD = path.join(__dirname, '..', 'children', 'concurrency.js');

function runChild(mode: string, env: Record<string, string> = {}): Record<string, unknown> {
  const stdout = execFileSync(process.execPath, [CHILD, mode], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

describe('concurrency', () => {
  describe('native backend', function () {
    before(function () {
      if (!backendInfo().cpu.available) this.skip();
    });

    it('the event loop keeps running while 8 async steps on 1024×9216 layers run (p99 delay, generous bound)', async function () {
      const shape = [1024, 9216];
      const weight = randomArray('float32', product(shape), 0.01);
      const outs = Array.from({ length: 8 }, () => new Float32Array(weight.length));
      // The work is sized to the machine: more iterations per step until two rounds take long enough to measure the
      // loop's delay under them (a fast host finished the first size in 64 ms), up to a cap.
      const MIN_MS = 150;
      const MAX_ITERATIONS = 1024;
      let iterations = 8;
      for (;;) {
        const normalizers = Array.from({ length: 8 }, (_, i) => new SpectralNormalizer(shape, { backend: 'cpu', iterations, seed: i }));
        const histogram = monitorEventLoopDelay({ resolution: 1 });
        histogram.enable();
        const start = performance.now();
        for (let round = 0; round < 2; round++) {
          await Promise.all(normalizers.map((sn, i) => sn.stepAsync(weight, { out: outs[i] })));
        }
        const duration = performance.now() - start;
        histogram.disable();
        const p99 = histogram.percentile(99) / 1e6;
        console.log(
          `      16 steps of ${iterations} iterations in ${duration.toFixed(0)} ms; event-loop delay p50 ` +
            `${(histogram.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${(histogram.max / 1e6).toFixed(2)} ms`,
        );
        if (duration >= MIN_MS) {
          // The target is 5 ms (see `npm run bench:event-loop`); CI's 2 shared vCPUs get a generous bound.
          assert.ok(p99 < 25, `event-loop delay p99 ${p99} ms`);
          return;
        }
        if (iterations >= MAX_ITERATIONS) {
          this.skip(); // even the largest size finishes too fast to tell: nothing to measure, nothing wrong
        }
        iterations = Math.min(MAX_ITERATIONS, iterations * Math.min(8, Math.ceil((1.5 * MIN_MS) / Math.max(duration, 1))));
      }
    });

    it('independent objects run concurrently: a tiny step on one settles before a long step started earlier on another', () => {
      assert.deepEqual(runChild('order').settled, ['small', 'big']);
    });

    it('up to the thread-pool size: with UV_THREADPOOL_SIZE=1 the tiny step waits for the long one', () => {
      assert.deepEqual(runChild('order', { UV_THREADPOOL_SIZE: '1' }).settled, ['big', 'small']);
    });

    it('worker threads terminated in the middle of async and sync native calls do not crash the process', () => {
      const result = runChild('terminate');
      assert.deepEqual(result.codes, new Array(12).fill(1));
      assert.ok(typeof result.sigma === 'number' && result.sigma > 0);
    });

    it('the addon loads and works in several worker threads at once and in the main thread, with the same bits', async () => {
      const shape = [96, 130];
      const weight = randomArray('float32', product(shape));
      const code = `
        const { parentPort, workerData } = require('node:worker_threads');
        const { SpectralNormalizer, backendInfo } = require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'lib'))});
        const { shape, weight } = workerData;
        const sn = new SpectralNormalizer(shape, { backend: 'cpu', seed: 4, iterations: 3, threads: 2 });
        const out = new Float32Array(weight.length);
        const first = sn.step(weight, { out });
        sn.stepAsync(weight, { out }).then((second) => parentPort.postMessage({ simd: backendInfo().cpu.simd, first, second, out, u: sn.u }));
      `;
      const workers = Array.from({ length: 3 }, () => new Worker(code, { eval: true, workerData: { shape, weight } }));
      const replies = workers.map(
        (w) =>
          new Promise<Record<string, unknown>>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      );
      // The main thread at the same time.
      const sn = new SpectralNormalizer(shape, { backend: 'cpu', seed: 4, iterations: 3, threads: 2 });
      const out = poisoned('float32', weight.length);
      const first = sn.step(weight, { out });
      const second = await sn.stepAsync(weight, { out });
      for (const reply of await Promise.all(replies)) {
        assert.equal(reply.simd, backendInfo().cpu.simd);
        assert.equal(reply.first, first);
        assert.equal(reply.second, second);
        assertSameBytes(reply.out as Float32Array, out, 'out');
        assertSameBytes(reply.u as Float32Array, sn.u, 'u');
      }
      await Promise.all(workers.map((w) => w.terminate()));
    });
  });

  for (const backend of backendsUnderTest()) {
    it(`batch operations fired together run in call order and equal running them one by one (${backend})`, async () => {
      const layers = [{ shape: [40, 30] }, { shape: [7, 3, 3] }, { shape: [300, 500], dim: 1 }];
      const queued = new SpectralNormBatch(layers, { seed: 9, backend });
      const serial = new SpectralNormBatch(layers, { seed: 9, backend });
      const rounds = Array.from({ length: 5 }, () => layers.map((l) => randomArray('float32', product(l.shape))));
      const order: number[] = [];
      const pending = rounds.map((original, r) => {
        const weights = original.map((w) => w.slice());
        return (r === 2 ? queued.warmupAsync(weights, 2) : queued.stepAsync(weights, { update: r !== 3 })).then((sigmas) => {
          order.push(r);
          return sigmas;
        });
      });
      const sigmas = await Promise.all(pending);
      assert.deepEqual(order, [0, 1, 2, 3, 4]);
      rounds.forEach((_, r) => {
        const weights = rounds[r].map((w) => w.slice());
        const expected = r === 2 ? serial.warmup(weights, 2) : serial.step(weights, { update: r !== 3 });
        assertSameBytes(sigmas[r], expected, `round ${r}: sigmas`);
      });
      layers.forEach((_, i) => assertSameBytes(queued.u(i), serial.u(i), `u(${i})`));
    });
  }
});
