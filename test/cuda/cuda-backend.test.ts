// The cuda backend: what can be checked without a GPU (availability and its reason, option errors, the batch
// planner, device errors leaving the caller's arrays intact), and, where a device is usable, device-resident weights.
// `npm run test:gpu` sets SN_REQUIRE_CUDA, which makes a missing device a failure instead of a skip.
import * as assert from 'node:assert/strict';

import type { CudaBatchPlan, NativeAddon } from '../../binding';
import { DeviceWeights, ErrorCode, SpectralNormBatch, autoBackend, backendInfo, spectralNorm } from '../../lib';
import { nativeAddon } from '../../lib/backends';
import { CommitKind } from '../../lib/codes';
import { assertClose, assertSameBytes, randomArray, randomInt, snapshot, toleranceFor } from '../support/helpers';

const info = backendInfo();
const cudaUsable = info.cuda.available;
const addon = nativeAddon() as NativeAddon | null;

describe('cuda backend', () => {
  if (process.env.SN_REQUIRE_CUDA) {
    it('is usable (SN_REQUIRE_CUDA is set, as by npm run test:gpu)', () => {
      assert.ok(cudaUsable, `the cuda backend is unavailable: ${info.cuda.reason}`);
    });
  }

  describe('availability', () => {
    it('reports itself consistently: available exactly when listed, with a reason when not', () => {
      assert.equal(info.available.includes('cuda'), cudaUsable);
      if (cudaUsable) {
        assert.equal(info.cuda.reason, null);
        // 'auto' gives host arrays to the backend predicted to finish first (test/core/auto-backend.test.ts), and
        // weights on the device to cuda.
        assert.equal(autoBackend([{ shape: [8, 8] }], { onDevice: true }), 'cuda');
        assert.ok(info.cuda.devices.length > 0);
      } else {
        assert.equal(typeof info.cuda.reason, 'string');
        assert.ok(info.cuda.reason!.length > 0);
        assert.notEqual(info.auto, 'cuda');
      }
    });

    it("backend 'cuda' throws a RangeError with the reason when no device is usable; 'auto' falls back", function () {
      if (cudaUsable) this.skip();
      assert.throws(
        () => new SpectralNormBatch([{ shape: [3, 4] }], { backend: 'cuda' }),
        (e: Error) => e instanceof RangeError && e.message.includes("options.backend 'cuda' is unavailable") &&
          e.message.includes(info.cuda.reason!),
      );
      assert.throws(() => spectralNorm(new Float32Array(12), [3, 4], { backend: 'cuda' }), RangeError);
      assert.notEqual(new SpectralNormBatch([{ shape: [3, 4] }]).backend, 'cuda');
    });

    it('names the reason the driver gave when the addon was built with CUDA', function () {
      if (cudaUsable || !info.cuda.compiled) this.skip();
      assert.match(info.cuda.reason!, /cudaGetDeviceCount|no device|CUDA/);
    });
  });

  describe('options', () => {
    it('device must be a non-negative integer, and only goes with backend cuda or auto', () => {
      for (const device of [-1, 0.5, '0', NaN]) {
        assert.throws(() => new SpectralNormBatch([{ shape: [2, 2] }], { device: device as number }), (e: Error) =>
          e instanceof RangeError && e.message.startsWith('options.device'));
      }
      assert.throws(() => new SpectralNormBatch([{ shape: [2, 2] }], { backend: 'js', device: 0 }), (e: Error) =>
        e instanceof RangeError && e.message.includes('options.device applies only to the cuda backend'));
      assert.throws(() => spectralNorm(new Float32Array(4), [2, 2], { backend: 'js', device: 0 }), RangeError);
    });

    it('a device index past the last GPU is a RangeError naming options.device', function () {
      if (!cudaUsable) this.skip();
      assert.throws(() => new SpectralNormBatch([{ shape: [2, 2] }], { backend: 'cuda', device: 1024 }), (e: Error) =>
        e instanceof RangeError && e.message.startsWith('options.device'));
    });

    it('toDevice on a batch that does not run on cuda throws and names the backend', () => {
      const batch = new SpectralNormBatch([{ shape: [3, 4] }], { backend: 'js', seed: 1 });
      assert.throws(() => batch.toDevice([new Float32Array(12)]), (e: Error) =>
        /toDevice\(\) needs the cuda backend, but this batch runs on 'js'/.test(e.message));
    });
  });

  describe('native entry points without a device', () => {
    before(function () {
      if (cudaUsable || !addon) this.skip();
    });

    it('DeviceArray throws an Error with a code and the CUDA reason, never crashes', () => {
      assert.throws(() => new addon!.DeviceArray('float32', 16, 0), (e: Error & { code?: string }) =>
        e.code === ErrorCode.Cuda && /CUDA/.test(e.message));
      assert.throws(() => new addon!.DeviceArray('int8' as 'float32', 16, 0), TypeError);
    });

    for (const dtype of ['float32', 'float64'] as const) {
      it(`a job for a device that cannot run leaves weights, out, u and v exactly as they were (${dtype}, sync and async)`, async () => {
        const weight = randomArray(dtype, 35);
        const out = randomArray(dtype, 35);
        const u = randomArray(dtype, 5);
        const v = randomArray(dtype, 7);
        const before = [weight, out, u, v].map(snapshot);
        const job = () => ({
          dtype,
          device: 0,
          layers: [{ weight, out, u, v, outer: 1, rows: 5, inner: 7, vectorNorm: false }],
          iterations: 2,
          tolerance: -1,
          eps: 1e-12,
          precision: 'mixed' as const,
          legacy: false,
          threads: 1,
          sigma: new Float64Array(1),
          status: new Int32Array(1),
          iterationsRun: new Int32Array(1),
          converged: new Uint8Array(1),
        });
        assert.throws(() => addon!.run(job()), (e: Error & { code?: string }) => e.code === ErrorCode.Cuda);
        await assert.rejects(addon!.runAsync(job()), (e: Error & { code?: string }) => e.code === ErrorCode.Cuda);
        [weight, out, u, v].forEach((a, i) => assertSameBytes(a, before[i], ['weight', 'out', 'u', 'v'][i]));
      });
    }

    it('job.device is checked like every other field', () => {
      const job = {
        dtype: 'float32', device: -1, layers: [], iterations: 1, tolerance: -1, eps: 0, precision: 'mixed', legacy: false, threads: 1,
        sigma: new Float64Array(0), status: new Int32Array(0), iterationsRun: new Int32Array(0), converged: new Uint8Array(0),
      };
      assert.throws(() => addon!.run(job as never), (e: Error) => e instanceof RangeError && /job\.device/.test(e.message));
    });
  });

  describe('batch planner (host side, no GPU needed)', () => {
    before(function () {
      if (!addon) this.skip();
    });

    type Shape = { outer: number; rows: number; inner: number; vectorNorm: boolean; hasOut: boolean };

    function checkPlan(layers: Shape[], elementBytes: number, iterated: boolean): CudaBatchPlan {
      const plan = addon!.internal.planCudaBatch(layers, elementBytes, iterated);
      assert.equal(plan.layers.length, layers.length);
      const doubleRanges: [number, number][] = [];
      const elementRanges: [number, number][] = [];
      layers.forEach((L, i) => {
        const p = plan.layers[i];
        const cols = L.outer * L.inner;
        const sweep = plan.sweep.filter((s) => s.layer === i);
        assert.equal(sweep.length, p.sweepItems, `layer ${i}: one sweep block per partial slot`);
        if (L.vectorNorm) {
          assert.equal(sweep.length, 1, `layer ${i}: a 1-D weight is one block`);
        } else {
          // The row ranges tile [0, rows) in order, none empty, slots 0..k-1.
          let next = 0;
          sweep.forEach((s, k) => {
            assert.equal(s.slot, k);
            assert.equal(s.begin, next, `layer ${i}: row ranges are contiguous`);
            assert.ok(s.end > s.begin, `layer ${i}: no empty row range`);
            next = s.end;
          });
          assert.equal(next, L.rows, `layer ${i}: every row is swept`);
          // The partial vectors stay small against W: the finish stage reads far less than the sweep.
          assert.ok(p.sweepItems * cols * 8 <= Math.max(cols * 8, (L.rows * cols * elementBytes) / 16) + 1e-9,
            `layer ${i}: ${p.sweepItems} partial slots of ${cols} doubles is too much scratch`);
          let col = 0;
          const finish = plan.finish.filter((f) => f.layer === i);
          assert.equal(finish.length, p.finishChunks);
          finish.forEach((f, k) => {
            assert.equal(f.chunk, k);
            assert.equal(f.begin, col);
            assert.ok(f.end > f.begin);
            col = f.end;
          });
          assert.equal(col, cols, `layer ${i}: every column of t is summed`);
          assert.equal(p.dOffset, p.xOffset + cols);
          assert.equal(p.tOffset, p.dOffset + L.rows);
          assert.equal(p.partialOffset, p.tOffset + cols);
          doubleRanges.push([p.xOffset, p.partialOffset + p.sweepItems * cols]);
          assert.equal(p.vNewOffset, p.uNewOffset + L.rows);
          elementRanges.push([p.uNewOffset, p.vNewOffset + cols]);
        }
        const commits = plan.commit.filter((c) => c.layer === i);
        assert.equal(commits.filter((c) => c.kind === CommitKind.Vectors).length, iterated && !L.vectorNorm ? 1 : 0, `layer ${i}: u, v committed once`);
        const divisions = commits.filter((c) => c.kind === CommitKind.Divide);
        if (!L.hasOut) {
          assert.equal(divisions.length, 0);
        } else {
          let e = 0;
          for (const c of divisions) {
            assert.equal(c.begin, e);
            assert.ok(c.end > c.begin);
            e = c.end;
          }
          assert.equal(e, L.outer * L.rows * L.inner, `layer ${i}: every element is divided`);
        }
      });
      for (const [ranges, total] of [[doubleRanges, plan.doubles], [elementRanges, plan.elements]] as const) {
        const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
        sorted.forEach(([b, e], k) => {
          assert.ok(e <= total, 'scratch stays inside the arena');
          if (k > 0) assert.ok(b >= sorted[k - 1][1], 'scratch ranges of layers do not overlap');
        });
      }
      // A layer's blocks depend on its own shape alone, so it gets the same bits alone or in any batch.
      layers.forEach((L, i) => {
        const alone = addon!.internal.planCudaBatch([L], elementBytes, iterated);
        assert.equal(alone.layers[0].sweepItems, plan.layers[i].sweepItems, `layer ${i}: same split alone`);
        assert.equal(alone.layers[0].finishChunks, plan.layers[i].finishChunks);
      });
      // Work lists are in layer order, so each layer's blocks are contiguous.
      for (const list of [plan.sweep, plan.finish, plan.commit]) {
        for (let k = 1; k < list.length; k++) assert.ok(list[k].layer >= list[k - 1].layer);
      }
      return plan;
    }

    it('awkward shapes: 1×1, 1×n, n×1, primes, 31×33, 1000×3, every dim of a 4-D weight, 1-D weights', () => {
      const shapes: Shape[] = [
        { outer: 1, rows: 1, inner: 1, vectorNorm: false, hasOut: true },
        { outer: 1, rows: 1, inner: 997, vectorNorm: false, hasOut: true },
        { outer: 1, rows: 997, inner: 1, vectorNorm: false, hasOut: false },
        { outer: 1, rows: 31, inner: 33, vectorNorm: false, hasOut: true },
        { outer: 1, rows: 1000, inner: 3, vectorNorm: false, hasOut: true },
        { outer: 1, rows: 6, inner: 5 * 3 * 3, vectorNorm: false, hasOut: true },
        { outer: 6, rows: 5, inner: 9, vectorNorm: false, hasOut: true },
        { outer: 30, rows: 3, inner: 3, vectorNorm: false, hasOut: true },
        { outer: 90, rows: 3, inner: 1, vectorNorm: false, hasOut: true },
        { outer: 1, rows: 17, inner: 1, vectorNorm: true, hasOut: true },
      ];
      for (const bytes of [4, 8]) for (const iterated of [true, false]) checkPlan(shapes, bytes, iterated);
    });

    it('random batches of many small and a few large layers', () => {
      for (let trial = 0; trial < 30; trial++) {
        const layers: Shape[] = Array.from({ length: randomInt(1, 60) }, () => {
          const big = randomInt(0, 9) === 0;
          return {
            outer: randomInt(0, 3) === 0 ? randomInt(1, 12) : 1,
            rows: big ? randomInt(500, 3000) : randomInt(1, 70),
            inner: big ? randomInt(500, 3000) : randomInt(1, 70),
            vectorNorm: randomInt(0, 9) === 0,
            hasOut: randomInt(0, 4) !== 0,
          };
        });
        checkPlan(layers, randomInt(0, 1) ? 4 : 8, randomInt(0, 3) !== 0);
      }
    });

    it('a single 8192×8192 layer is spread over every multiprocessor', () => {
      const plan = checkPlan([{ outer: 1, rows: 8192, inner: 8192, vectorNorm: false, hasOut: true }], 4, true);
      assert.ok(plan.sweep.length >= 132, `only ${plan.sweep.length} sweep blocks for 132 SMs`);
      assert.ok(plan.finish.length >= 4);
    });
  });

  describe('device-resident weights', () => {
    before(function () {
      if (!cudaUsable) this.skip();
    });

    for (const dtype of ['float32', 'float64'] as const) {
      it(`toDevice, step(handle) and download agree with the same steps on the CPU (${dtype})`, async () => {
        const shapes = [[64, 3, 3, 3], [17, 31], [1, 9], [9, 1], [40]];
        const make = (backend: 'cuda' | 'cpu') =>
          new SpectralNormBatch(shapes.map((shape, i) => ({ shape, seed: 11 + i })), { backend, dtype, iterations: 2 });
        const gpu = make('cuda');
        const cpu = make(info.cpu.available ? 'cpu' : 'js' as 'cpu');
        const weights = shapes.map((s) => randomArray(dtype, s.reduce((a, b) => a * b, 1)));
        const host = weights.map(snapshot);
        const handle = gpu.toDevice(weights);
        const sigmaGpu = [gpu.step(handle), await gpu.stepAsync(handle)];
        const sigmaCpu = [cpu.step(host), cpu.step(host)];
        const tol = toleranceFor(dtype);
        sigmaGpu.forEach((s, k) => assertClose(s, sigmaCpu[k], tol, `sigma of step ${k}`));
        handle.download().forEach((w, i) => assertClose(w, host[i], tol, `weights[${i}]`));
        shapes.forEach((_, i) => {
          assertClose(gpu.u(i), cpu.u(i), tol, `u(${i})`);
          assertClose(gpu.v(i), cpu.v(i), tol, `v(${i})`);
        });
        // A host step after device steps continues from the device's u and v (and its divided weights).
        const more = handle.download();
        assertClose(gpu.step(more), cpu.step(host), tol, 'a host step after device steps');
        more.forEach((w, i) => assertClose(w, host[i], tol, `weights[${i}] after the host step`));
        handle.dispose();
      });
    }

    it('dispose is idempotent, shared with Symbol.dispose, and every use after it throws', () => {
      const batch = new SpectralNormBatch([{ shape: [4, 5], seed: 3 }], { backend: 'cuda' });
      const handle = batch.toDevice([randomArray('float32', 20)]);
      assert.ok(handle instanceof DeviceWeights);
      assert.equal(handle.disposed, false);
      handle[Symbol.dispose]();
      assert.equal(handle.disposed, true);
      handle.dispose();
      assert.throws(() => handle.download(), /disposed/);
      assert.throws(() => batch.step(handle), /disposed/);
    });

    it('a handle belongs to its batch, and out is refused with one', () => {
      const a = new SpectralNormBatch([{ shape: [4, 5], seed: 3 }], { backend: 'cuda' });
      const b = new SpectralNormBatch([{ shape: [4, 5], seed: 3 }], { backend: 'cuda' });
      const handle = a.toDevice([randomArray('float32', 20)]);
      assert.throws(() => b.step(handle), TypeError);
      assert.throws(() => a.step(handle, { out: [new Float32Array(20)] }), TypeError);
      handle.dispose();
    });

    it('NaN in a device weight throws and leaves the device weights, u and v as they were', () => {
      const batch = new SpectralNormBatch([{ shape: [6, 7], seed: 5 }, { shape: [3, 3], seed: 6 }], { backend: 'cuda' });
      const weights = [randomArray('float32', 42), randomArray('float32', 9)];
      weights[1][4] = NaN;
      const handle = batch.toDevice(weights);
      const u = batch.u(0);
      assert.throws(() => batch.step(handle), RangeError);
      handle.download().forEach((w, i) => assertSameBytes(w, weights[i], `weights[${i}]`));
      assertSameBytes(batch.u(0), u, 'u(0)');
      handle.dispose();
    });
  });
});
