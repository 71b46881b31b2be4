// Every backend against an independent float64 reference (test/support/reference.ts) on awkward shapes, every dim of 3-D
// and 4-D weights, both dtypes, both iteration orders, and large layers that take the threaded paths.
import * as assert from 'node:assert/strict';

import { type FloatArray, SpectralNormBatch, SpectralNormalizer } from '../../lib';
import { assertClose, backendsUnderTest, poisoned, product, randomArray, randomInt, toleranceFor } from '../support/helpers';
import { type ReferenceCase, checkAgainstReference } from '../support/agreement';
import { permutedMatrix, referenceDivide, referenceStep } from '../support/reference';

const SHAPES: ReferenceCase[] = [
  { shape: [1, 37], dim: 0 },
  { shape: [37, 1], dim: 0 },
  { shape: [17, 31], dim: 0 },
  { shape: [1000, 3], dim: 0 },
  { shape: [3, 1000], dim: 0 },
  { shape: [13, 7, 5], dim: 0 },
  { shape: [13, 7, 5], dim: 1 },
  { shape: [13, 7, 5], dim: 2 },
  { shape: [6, 5, 4, 3], dim: 0 },
  { shape: [6, 5, 4, 3], dim: 1 },
  { shape: [6, 5, 4, 3], dim: 2 },
  { shape: [6, 5, 4, 3], dim: -1 },
  { shape: [33, 65], dim: 1 },
  { shape: [97], dim: 0 },
  // Large enough for more than one thread per layer (≥ 2·2^17 elements), rows not a multiple of anything.
  { shape: [613, 509], dim: 0 },
  { shape: [61, 83, 67], dim: 1 },
  { shape: [61, 83, 67], dim: 2 },
];

describe('backends agree with a float64 reference', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      for (const dtype of ['float32', 'float64'] as const) {
        for (const c of SHAPES) {
          it(`${dtype} [${c.shape.join('×')}] dim ${c.dim}: step, then eval`, () => {
            checkAgainstReference(backend, dtype, c, false, 2);
            checkAgainstReference(backend, dtype, c, true, 2);
          });
        }
      }

      it('a batch of 200 small layers of random shapes and dims equals the reference layer by layer', () => {
        const layers = Array.from({ length: 200 }, () => {
          const ndim = randomInt(1, 4);
          const shape = Array.from({ length: ndim }, () => randomInt(1, ndim > 2 ? 7 : 40));
          return { shape, dim: randomInt(0, ndim - 1) };
        });
        for (const dtype of ['float32', 'float64'] as const) {
          const batch = new SpectralNormBatch(layers, { dtype, iterations: 3, backend: backend as 'cpu', seed: 42 });
          const weights = layers.map((l) => randomArray(dtype, product(l.shape)));
          const outs = weights.map((w) => poisoned(dtype, w.length));
          const before = layers.map((_, i) => ({ u: batch.u(i), v: batch.v(i) }));
          const sigmas = batch.step(weights, { out: outs });
          layers.forEach((l, i) => {
            const tol = toleranceFor(dtype);
            if (l.shape.length === 1) {
              assertClose(sigmas[i], Math.hypot(...weights[i]), tol, `layer ${i} sigma`);
              return;
            }
            const ref = referenceStep(permutedMatrix(weights[i], l.shape, l.dim), before[i].u, before[i].v, 3, 1e-12, false, dtype);
            assertClose(sigmas[i], ref.sigma, tol, `layer ${i} [${l.shape}] dim ${l.dim} sigma`);
            assertClose(batch.u(i), ref.u, tol, `layer ${i} u`);
            assertClose(outs[i], referenceDivide(weights[i], sigmas[i], dtype), { rtol: 0, atol: 0 }, `layer ${i} out`);
          });
        }
      });
    });
  }

  it('views at odd offsets into a larger buffer give the same bits as aligned copies (no alignment assumed)', () => {
    for (const backend of backendsUnderTest()) {
      for (const dtype of ['float32', 'float64'] as const) {
        for (const offset of [1, 3, 5]) {
          const shape = [37, 41];
          const n = 37 * 41;
          const big = randomArray(dtype, n + 2 * offset + 1);
          const view = big.subarray(offset, offset + n);
          const aligned = view.slice();
          const outBig = poisoned(dtype, n + offset + 2);
          const outView = outBig.subarray(offset + 1, offset + 1 + n);
          const outAligned = poisoned(dtype, n);
          const a = new SpectralNormalizer(shape, { dtype, seed: 3, iterations: 2, backend: backend as 'cpu' });
          const b = new SpectralNormalizer(shape, { dtype, seed: 3, iterations: 2, backend: backend as 'cpu' });
          assert.equal(a.step(view, { out: outView }), b.step(aligned, { out: outAligned }));
          assert.deepEqual(Array.from(outView), Array.from(outAligned), `${backend} ${dtype} offset ${offset}`);
          assert.ok(Number.isNaN(outBig[offset]) && Number.isNaN(outBig[offset + 1 + n]), 'nothing written outside the view');
          const edges = [big[offset - 1], big[offset + n]];
          a.step(view); // in place, through the view: the elements around it stay as they were
          assert.deepEqual([big[offset - 1], big[offset + n]], edges);
        }
      }
    }
  });

  it('the CPU and JS backends agree with each other on every shape', function () {
    const backends = backendsUnderTest().filter((b) => b === 'cpu' || b === 'js');
    if (backends.length < 2) this.skip();
    for (const dtype of ['float32', 'float64'] as const) {
      for (const c of SHAPES) {
        const weight = randomArray(dtype, product(c.shape));
        const results = backends.map((backend) => {
          const sn = new SpectralNormalizer(c.shape, { dim: c.dim, dtype, iterations: 3, seed: 7, backend: backend as 'cpu' });
          const out: FloatArray = poisoned(dtype, weight.length);
          const sigma = sn.step(weight, { out });
          return { sigma, out, u: sn.u, v: sn.v };
        });
        const tol = toleranceFor(dtype);
        const [a, b] = results;
        const what = `${dtype} [${c.shape}] dim ${c.dim}`;
        assertClose(a.sigma, b.sigma, tol, `${what} sigma`);
        assertClose(a.u, b.u, tol, `${what} u`);
        assertClose(a.v, b.v, tol, `${what} v`);
        assertClose(a.out, b.out, tol, `${what} out`);
        assert.equal(a.u.length, b.u.length);
      }
    }
  });
});

describe('large divisions into separate outputs (the non-temporal store path)', () => {
  // ≥ 16 MiB of separate out buffers in one job switches the CPU backend to streaming stores; the bits must not change.
  for (const backend of backendsUnderTest()) {
    for (const dtype of ['float32', 'float64'] as const) {
      it(`${backend} ${dtype}: W/σ exact at an odd offset, in place beside it, nothing written outside the views`, () => {
        const shapes =
          dtype === 'float32'
            ? [
                [2053, 2049],
                [5, 3],
              ]
            : [
                [1031, 2039],
                [5, 3],
              ];
        const weights = shapes.map((s) => randomArray(dtype, product(s)));
        const originals = weights.map((w) => w.slice());
        const n = weights[0].length;
        const outBig = poisoned(dtype, n + 3);
        const out = outBig.subarray(1, 1 + n);
        const batch = new SpectralNormBatch(
          shapes.map((shape) => ({ shape })),
          { dtype, seed: 5, backend: backend as 'cpu' },
        );
        const sigmas = batch.step(weights, { out: [out, weights[1]] });
        assertClose(out, referenceDivide(originals[0], sigmas[0], dtype), { rtol: 0, atol: 0 }, 'streamed out');
        assertClose(weights[1], referenceDivide(originals[1], sigmas[1], dtype), { rtol: 0, atol: 0 }, 'in place');
        assert.ok(Number.isNaN(outBig[0]) && Number.isNaN(outBig[n + 1]) && Number.isNaN(outBig[n + 2]), 'outside the view');
        assert.deepEqual(weights[0], originals[0], 'W itself untouched when out is separate');
      });
    }
  }
});
