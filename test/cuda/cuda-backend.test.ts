// The cuda backend: what can be checked without a GPU (availability and its reason, option errors, device errors
// leaving the caller's arrays intact), and, where a device is usable, device-resident weights. The batch planner has
// its own file (cuda-planner.test.ts), and so do the kernels' paths (cuda-paths.test.ts).
// `npm run test:gpu` sets SN_REQUIRE_CUDA, which makes a missing device a failure instead of a skip.
import * as assert from 'node:assert/strict';

import type { NativeAddon } from '../../binding';
import { DeviceWeights, ErrorCode, SpectralNormBatch, autoBackend, backendInfo, spectralNorm } from '../../lib';
import { nativeAddon } from '../../lib/backends';
import { assertClose, assertSameBytes, randomArray, snapshot, toleranceFor } from '../support/helpers';

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
        (e: Error) =>
          e instanceof RangeError && e.message.includes("options.backend 'cuda' is unavailable") && e.message.includes(info.cuda.reason!),
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
        assert.throws(
          () => new SpectralNormBatch([{ shape: [2, 2] }], { device: device as number }),
          (e: Error) => e instanceof RangeError && e.message.startsWith('options.device'),
        );
      }
      assert.throws(
        () => new SpectralNormBatch([{ shape: [2, 2] }], { backend: 'js', device: 0 }),
        (e: Error) => e instanceof RangeError && e.message.includes('options.device applies only to the cuda backend'),
      );
      assert.throws(() => spectralNorm(new Float32Array(4), [2, 2], { backend: 'js', device: 0 }), RangeError);
    });

    it('a device index past the last GPU is a RangeError naming options.device', function () {
      if (!cudaUsable) this.skip();
      assert.throws(
        () => new SpectralNormBatch([{ shape: [2, 2] }], { backend: 'cuda', device: 1024 }),
        (e: Error) => e instanceof RangeError && e.message.startsWith('options.device'),
      );
    });

    it('toDevice on a batch that does not run on cuda throws and names the backend', () => {
      const batch = new SpectralNormBatch([{ shape: [3, 4] }], { backend: 'js', seed: 1 });
      assert.throws(
        () => batch.toDevice([new Float32Array(12)]),
        (e: Error) => /toDevice\(\) needs the cuda backend, but this batch runs on 'js'/.test(e.message),
      );
    });
  });

  describe('native entry points without a device', () => {
    before(function () {
      if (cudaUsable || !addon) this.skip();
    });

    it('DeviceArray throws an Error with a code and the CUDA reason, never crashes', () => {
      assert.throws(
        () => new addon!.DeviceArray('float32', 16, 0),
        (e: Error & { code?: string }) => e.code === ErrorCode.Cuda && /CUDA/.test(e.message),
      );
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
        assert.throws(
          () => addon!.run(job()),
          (e: Error & { code?: string }) => e.code === ErrorCode.Cuda,
        );
        await assert.rejects(addon!.runAsync(job()), (e: Error & { code?: string }) => e.code === ErrorCode.Cuda);
        [weight, out, u, v].forEach((a, i) => assertSameBytes(a, before[i], ['weight', 'out', 'u', 'v'][i]));
      });
    }

    it('job.device is checked like every other field', () => {
      const job = {
        dtype: 'float32',
        device: -1,
        layers: [],
        iterations: 1,
        tolerance: -1,
        eps: 0,
        precision: 'mixed',
        legacy: false,
        threads: 1,
        sigma: new Float64Array(0),
        status: new Int32Array(0),
        iterationsRun: new Int32Array(0),
        converged: new Uint8Array(0),
      };
      assert.throws(
        () => addon!.run(job as never),
        (e: Error) => e instanceof RangeError && /job\.device/.test(e.message),
      );
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
          new SpectralNormBatch(
            shapes.map((shape, i) => ({ shape, seed: 11 + i })),
            { backend, dtype, iterations: 2 },
          );
        const gpu = make('cuda');
        const cpu = make(info.cpu.available ? 'cpu' : ('js' as 'cpu'));
        const weights = shapes.map((s) =>
          randomArray(
            dtype,
            s.reduce((a, b) => a * b, 1),
          ),
        );
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
      const batch = new SpectralNormBatch(
        [
          { shape: [6, 7], seed: 5 },
          { shape: [3, 3], seed: 6 },
        ],
        { backend: 'cuda' },
      );
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
