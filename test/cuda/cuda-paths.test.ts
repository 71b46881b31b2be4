// The CUDA kernels' paths, where a device (or the emulation, npm run test:cuda-emulated) is usable: the tiled sweep in
// clusters of every size the device allows, with 16-byte and element loads, the general sweep (wide and strided
// rows), the slot reduction, every mode and precision, against the CPU backend; bitwise determinism, the same bits for
// a layer alone, in a batch, and at an unaligned address; graph replay across batches and options; host arrays staged
// through small pinned chunks; the probe of the 'auto' cost model; and the lifecycle: a worker that used the GPU and
// exited leaves nothing behind.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import type { NativeAddon } from '../../binding';
import { type FloatArray, SpectralNormBatch, backendInfo, spectralNorm } from '../../lib';
import { nativeAddon } from '../../lib/backends';
import { assertClose, assertSameBytes, poisoned, product, randomArray, toleranceFor } from '../support/helpers';
import { permutedMatrix } from '../support/reference';

const info = backendInfo();
const addon = nativeAddon() as NativeAddon | null;
const reference = info.cpu.available ? 'cpu' : 'js';
const CHILD = path.join(__dirname, '..', 'children', 'cuda-lifecycle.js');

interface Layer {
  shape: number[];
  dim?: number;
}

// Shapes that take each path on a GPU (256 threads, clusters up to 8) and on the emulation (64 threads, up to 4).
const CASES: { name: string; layers: Layer[] }[] = [
  { name: 'narrow rows, 16-byte loads', layers: [{ shape: [37, 60] }] },
  { name: 'narrow rows, element loads (27 columns)', layers: [{ shape: [29, 3, 3, 3] }] },
  { name: 'a cluster of tiles (1800 columns)', layers: [{ shape: [100, 1800] }] },
  { name: 'wide rows (6000 columns)', layers: [{ shape: [60, 6000] }] },
  { name: 'rows wider than any cluster (40000 columns): general sweep', layers: [{ shape: [3, 40000] }] },
  { name: 'strided rows (dim 1): general sweep', layers: [{ shape: [8, 30, 3, 3], dim: 1 }] },
  {
    name: 'a mixed batch',
    layers: [
      { shape: [1, 1] },
      { shape: [97] },
      { shape: [31, 33] },
      { shape: [100, 1800] },
      { shape: [5, 7, 3], dim: 2 },
      { shape: [2, 4096] },
    ],
  },
];

type Mode = { name: string; iterations: number; legacy: boolean; update: boolean };
const MODES: Mode[] = [
  { name: '1 iteration', iterations: 1, legacy: false, update: true },
  { name: '3 iterations', iterations: 3, legacy: false, update: true },
  { name: 'legacy, 2 iterations', iterations: 2, legacy: true, update: true },
  { name: 'eval', iterations: 1, legacy: false, update: false },
];

function run(
  layers: Layer[],
  backend: 'cuda' | 'cpu' | 'js',
  dtype: 'float32' | 'float64',
  precision: 'mixed' | 'float64',
  mode: Mode,
  weights: FloatArray[],
) {
  const batch = new SpectralNormBatch(
    layers.map((l, i) => ({ ...l, seed: 50 + i })),
    {
      backend,
      dtype,
      precision,
      iterations: mode.iterations,
      legacy: mode.legacy,
    },
  );
  const out = weights.map((w) => poisoned(dtype, w.length));
  const sigma = batch.step(weights, { out, update: mode.update });
  return { sigma, out, u: layers.map((_, i) => batch.u(i)), v: layers.map((_, i) => batch.v(i)) };
}

/** Σ|uᵢ||Wᵢⱼ||vⱼ| / |uᵀWv|: how much the bilinear form σ = uᵀWv cancels (1 for a 1-D weight, whose σ is its norm). */
function conditionOfSigma(weight: FloatArray, layer: Layer, u: FloatArray, v: FloatArray, sigma: number): number {
  if (layer.shape.length === 1) return 1;
  const m = permutedMatrix(weight, layer.shape, layer.dim === undefined ? 0 : (layer.dim + layer.shape.length) % layer.shape.length);
  let absolute = 0;
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) absolute += Math.abs(u[r] * m.data[r * m.cols + c] * v[c]);
  }
  return Math.max(1, absolute / Math.abs(sigma));
}

function bits(a: FloatArray | Float64Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

describe('cuda kernel paths', function () {
  before(function () {
    if (!info.cuda.available) this.skip();
  });

  for (const c of CASES) {
    for (const [dtype, precision] of [
      ['float32', 'mixed'],
      ['float32', 'float64'],
      ['float64', 'float64'],
    ] as const) {
      it(`${c.name}: every mode agrees with the ${reference} backend and repeats bit for bit (${dtype}, ${precision} sums)`, () => {
        const weights = c.layers.map((l) => randomArray(dtype, product(l.shape)));
        const hasVector = c.layers.some((l) => l.shape.length === 1);
        for (const mode of MODES.filter((m) => !(hasVector && m.legacy))) {
          const gpu = run(c.layers, 'cuda', dtype, precision, mode, weights);
          // The reference sums in float64: two 'mixed' backends chunk their float32 sums differently, so each is held
          // to the exact-sum results, not to the other's rounding.
          const ref = run(c.layers, reference, dtype, 'float64', mode, weights);
          const tol = toleranceFor(dtype);
          c.layers.forEach((l, i) => {
            // Float32 sums err relative to the sum of |terms|, not to the sum. In eval mode σ = uᵀWv with the seed's
            // random u and v (no iteration), a sum that cancels to a small fraction of Σ|uᵢ||Wᵢⱼ||vⱼ|, so 'mixed' is
            // held to the float32 tolerance times that condition number κ (≈ 1 wherever σ = ‖Wv‖, as after an
            // iteration); float64 sums keep the plain tolerance.
            const kappa = precision === 'mixed' && !mode.update ? conditionOfSigma(weights[i], l, ref.u[i], ref.v[i], ref.sigma[i]) : 1;
            const scaled = { ...tol, rtol: tol.rtol * kappa };
            assertClose(gpu.sigma[i], ref.sigma[i], scaled, `${mode.name}: sigma[${i}] (κ ${kappa.toPrecision(3)})`);
            assertClose(gpu.out[i], ref.out[i], scaled, `${mode.name}: out[${i}] (κ ${kappa.toPrecision(3)})`);
            assertClose(gpu.u[i], ref.u[i], tol, `${mode.name}: u[${i}]`);
            assertClose(gpu.v[i], ref.v[i], tol, `${mode.name}: v[${i}]`);
          });
          const again = run(c.layers, 'cuda', dtype, precision, mode, weights);
          assert.ok(bits(again.sigma).equals(bits(gpu.sigma)), `${mode.name}: σ differs run to run`);
          c.layers.forEach((_, i) => assert.ok(bits(again.out[i]).equals(bits(gpu.out[i])), `${mode.name}: out[${i}] differs run to run`));
        }
      });
    }
  }

  it('converge mode (one-shot spectralNorm) agrees with the reference on every path', () => {
    // At most 25 iterations: the emulation is slow, and both backends stop at the same count.
    const converge = { tolerance: 1e-7, maxIterations: 25 };
    for (const c of CASES) {
      for (const l of c.layers) {
        for (const dtype of ['float32', 'float64'] as const) {
          const w = randomArray(dtype, product(l.shape));
          const g = spectralNorm(w, l.shape, { dim: l.dim, backend: 'cuda', seed: 7, ...converge });
          const r = spectralNorm(w, l.shape, { dim: l.dim, backend: reference, seed: 7, ...converge });
          assertClose(g.sigma, r.sigma, { rtol: 1e-5, atol: 1e-6 }, `${l.shape.join('×')} ${dtype}: sigma`);
        }
      }
    }
  });

  it('a layer gets the same bits alone and in a batch', () => {
    const layers: Layer[] = [{ shape: [100, 1800] }, { shape: [3, 40000] }, { shape: [29, 3, 3, 3] }, { shape: [64, 576] }];
    const weights = layers.map((l) => randomArray('float32', product(l.shape)));
    const mode = MODES[1];
    const together = run(layers, 'cuda', 'float32', 'mixed', mode, weights);
    layers.forEach((l, i) => {
      const batch = new SpectralNormBatch([{ ...l, seed: 50 + i }], { backend: 'cuda', iterations: mode.iterations });
      const out = [poisoned('float32', weights[i].length)];
      const sigma = batch.step([weights[i]], { out });
      assert.equal(sigma[0], together.sigma[i], `layer ${i}: σ`);
      assertSameBytes(out[0], together.out[i], `layer ${i}: out`);
      assertSameBytes(batch.u(0), together.u[i], `layer ${i}: u`);
    });
  });

  it('an unaligned device weight (element loads) gives the same bits as an aligned one (16-byte loads)', () => {
    // toDevice packs weights end to end: after a 1×3 weight, the next starts 12 bytes into the array.
    const shape = [100, 1800];
    const w = randomArray('float32', product(shape));
    const pad = randomArray('float32', 3);
    const aligned = new SpectralNormBatch([{ shape, seed: 9 }], { backend: 'cuda', iterations: 2 });
    const unaligned = new SpectralNormBatch(
      [
        { shape: [1, 3], seed: 1 },
        { shape, seed: 9 },
      ],
      { backend: 'cuda', iterations: 2 },
    );
    const a = aligned.toDevice([w]);
    const b = unaligned.toDevice([pad, w]);
    const sa = aligned.step(a);
    const sb = unaligned.step(b);
    assert.equal(sb[1], sa[0]);
    assertSameBytes(b.download()[1], a.download()[0], 'W/σ');
    assertSameBytes(unaligned.v(1), aligned.v(0), 'v');
    a.dispose();
    b.dispose();
  });

  it('graph replay: repeated steps, alternating batches and changed options give what fresh objects give', () => {
    const shapesA = [
      [40, 300],
      [7, 9],
    ];
    const shapesB = [[100, 1800]];
    const wa = shapesA.map((s) => randomArray('float32', product(s)));
    const wb = shapesB.map((s) => randomArray('float32', product(s)));
    const make = (shapes: number[][], backend: 'cuda' | 'cpu' | 'js', iterations: number, eps = 1e-12) =>
      new SpectralNormBatch(
        shapes.map((shape, i) => ({ shape, seed: 20 + i })),
        { backend, iterations, eps },
      );
    const gpuA = make(shapesA, 'cuda', 1);
    const gpuB = make(shapesB, 'cuda', 2);
    const refA = make(shapesA, reference, 1);
    const refB = make(shapesB, reference, 2);
    // step() with `out`, so the weights stay as they are for the next call.
    const step = (batch: SpectralNormBatch, weights: FloatArray[]) =>
      batch.step(weights, { out: weights.map((w) => new Float32Array(w.length)) });
    for (let round = 0; round < 4; round++) {
      assertClose(step(gpuA, wa), step(refA, wa), toleranceFor('float32'), `A, round ${round}`);
      assertClose(step(gpuB, wb), step(refB, wb), toleranceFor('float32'), `B, round ${round}`);
    }
    // The same shapes with other options: a different graph, not a stale one.
    const eps = make(shapesA, 'cuda', 3, 1e-3);
    const epsRef = make(shapesA, reference, 3, 1e-3);
    assertClose(step(eps, wa), step(epsRef, wa), toleranceFor('float32'), 'other iterations and eps');
    assertClose(step(gpuA, wa), step(refA, wa), toleranceFor('float32'), 'A again');
    assertClose(gpuA.u(0), refA.u(0), toleranceFor('float32'), 'A: u after five steps');
  });

  describe('host arrays through small staging chunks', () => {
    before(function () {
      addon!.internal.testCudaStagingChunk(4096);
    });
    after(() => addon!.internal.testCudaStagingChunk(0));

    it('a batch that spans many chunks agrees with the reference; a non-finite one modifies nothing', () => {
      const shapes = [[40, 300], [97], [3, 3001], [64, 3, 3, 3]];
      const weights = shapes.map((s) => randomArray('float32', product(s)));
      const gpu = new SpectralNormBatch(
        shapes.map((shape, i) => ({ shape, seed: i })),
        { backend: 'cuda', iterations: 2 },
      );
      const ref = new SpectralNormBatch(
        shapes.map((shape, i) => ({ shape, seed: i })),
        { backend: reference, iterations: 2 },
      );
      const outs = weights.map((w) => poisoned('float32', w.length));
      const refOuts = weights.map((w) => poisoned('float32', w.length));
      assertClose(gpu.step(weights, { out: outs }), ref.step(weights, { out: refOuts }), toleranceFor('float32'), 'sigma');
      outs.forEach((o, i) => assertClose(o, refOuts[i], toleranceFor('float32'), `out[${i}]`));
      shapes.forEach((_, i) => assertClose(gpu.u(i), ref.u(i), toleranceFor('float32'), `u(${i})`));

      const bad = weights.map((w) => w.slice());
      bad[2][9000] = Infinity;
      const before = bad.map((w) => w.slice());
      const vectors = shapes.map((_, i) => [gpu.u(i), gpu.v(i)]);
      const badOuts = weights.map((w) => poisoned('float32', w.length));
      const outBefore = badOuts.map((o) => o.slice());
      assert.throws(() => gpu.step(bad, { out: badOuts }), RangeError);
      bad.forEach((w, i) => assertSameBytes(w, before[i], `weights[${i}]`));
      badOuts.forEach((o, i) => assertSameBytes(o, outBefore[i], `out[${i}]`));
      vectors.forEach(([u, v], i) => {
        assertSameBytes(gpu.u(i), u, `u(${i})`);
        assertSameBytes(gpu.v(i), v, `v(${i})`);
      });
    });

    it('toDevice and download round-trip exactly across chunks, in place division included', () => {
      const shapes = [
        [33, 300],
        [5, 3001],
      ];
      const weights = shapes.map((s) => randomArray('float32', product(s)));
      const batch = new SpectralNormBatch(
        shapes.map((shape, i) => ({ shape, seed: i })),
        { backend: 'cuda' },
      );
      const handle = batch.toDevice(weights);
      handle.download().forEach((w, i) => assertSameBytes(w, weights[i], `weights[${i}]`));
      const sigma = batch.step(handle);
      handle.download().forEach((w, i) => {
        const expected = weights[i].map((x) => Math.fround(x / Math.fround(sigma[i])));
        assertSameBytes(w, expected, `W/σ[${i}]`);
      });
      handle.dispose();
    });
  });

  it('cudaProbe measures positive bandwidths and a launch time, and checks its argument', () => {
    const p = addon!.cudaProbe(0);
    for (const key of ['hostToDeviceBytesPerSecond', 'deviceToHostBytesPerSecond', 'launchSeconds', 'deviceCopyBytesPerSecond'] as const) {
      assert.ok(Number.isFinite(p[key]) && p[key] > 0, `${key}: ${p[key]}`);
    }
    assert.throws(
      () => addon!.cudaProbe(-1),
      (e: Error) => e instanceof RangeError && e.message.startsWith('device'),
    );
    assert.throws(() => addon!.cudaProbe(0.5), RangeError);
    assert.throws(
      () => addon!.cudaProbe(1023),
      (e: Error & { code?: string }) => e.code === 'ERR_SPECTRAL_NORM_CUDA',
    );
  });

  it('forced tunings (many slots, two reduction levels, small clusters) give the same results (child process)', () => {
    const out = execFileSync(process.execPath, [CHILD, 'tuning'], {
      env: { ...process.env, SN_CUDA_TUNING: 'blocksPerSm=64,minRowsPerSlot=2,slotsPerGroup=2,maxUnits=2,divideElements=512' },
      encoding: 'utf8',
      timeout: 600_000,
    });
    const result = JSON.parse(out.trim().split('\n').pop()!) as { worst: number; checks: number };
    assert.ok(result.checks > 0);
    assert.ok(result.worst <= 1, `worst error ${result.worst} of the tolerance`);
  });

  it('a worker that used the GPU and exited leaves no context, arena, pinned or device memory (child process)', () => {
    const out = execFileSync(process.execPath, [CHILD, 'worker'], { encoding: 'utf8', timeout: 600_000 });
    const result = JSON.parse(out.trim().split('\n').pop()!) as Record<string, Record<string, number>>;
    assert.ok(
      result.inWorker.contexts >= 1 && result.inWorker.arenaBytes > 0 && result.inWorker.deviceArrayBytes > 0,
      `the worker held resources: ${JSON.stringify(result.inWorker)}`,
    );
    assert.deepEqual(result.afterWorker, { users: 0, contexts: 0, arenaBytes: 0, pinnedBytes: 0, graphs: 0, deviceArrayBytes: 0 });
    assert.equal(result.afterMain.contexts, 1, 'the main thread can use the GPU afterwards');
  });
});
