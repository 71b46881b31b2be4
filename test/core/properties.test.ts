// Properties of σ that hold for any weight, checked with fast-check on random shapes, dims and values, on every
// backend.
import * as assert from 'node:assert/strict';

import fc from 'fast-check';

import { type FloatArray, exactSpectralNorm, spectralNorm } from '../../lib';
import { backendsUnderTest, testSeed } from '../support/helpers';
import { permutedMatrix, singularValues } from '../support/reference';

const RUNS = 60;

/** A weight of 1 to 4 dimensions (each 1..9, or 1..40 for 2-D), a dim in range, values in [-10, 10]. */
const weightArbitrary = fc
  .integer({ min: 1, max: 4 })
  .chain((ndim) => fc.array(fc.integer({ min: 1, max: ndim === 2 ? 40 : 9 }), { minLength: ndim, maxLength: ndim }))
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      dim: fc.integer({ min: 0, max: shape.length - 1 }),
      dtype: fc.constantFrom('float32' as const, 'float64' as const),
      values: fc.array(fc.double({ min: -10, max: 10, noNaN: true }), {
        minLength: shape.reduce((a, b) => a * b, 1),
        maxLength: shape.reduce((a, b) => a * b, 1),
      }),
    }),
  )
  .filter(({ values }) => values.some((x) => x !== 0));

function toArray(dtype: 'float32' | 'float64', values: number[]): FloatArray {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

/** Values far from the subnormal range (|x| ≥ 1e-20 or 0), for properties that scale them exactly. */
function normalOnly(values: number[]): number[] {
  return values.map((x) => (Math.abs(x) < 1e-20 ? 0 : x));
}

const converge = { tolerance: 1e-13, maxIterations: 20000 };
const params = () => ({ numRuns: RUNS, seed: testSeed() });

/** ‖w‖₂, scaled so that subnormal or huge entries neither underflow nor overflow. */
function frobenius(w: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < w.length; i++) m = Math.max(m, Math.abs(w[i]));
  if (m === 0) return 0;
  let s = 0;
  for (let i = 0; i < w.length; i++) s += (w[i] / m) ** 2;
  return m * Math.sqrt(s);
}

describe('properties', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      it('σ(cW) = |c|·σ(W), at any scale (1e-20 included)', () => {
        fc.assert(
          fc.property(weightArbitrary, fc.constantFrom(-3.5, 0.25, 1e-20, 1e20, -7e-9), ({ shape, dim, values }, c) => {
            // float64, so that cW is exactly representable up to one rounding per entry; no subnormals, whose
            // products with c lose bits.
            const w = Float64Array.from(normalOnly(values));
            const cw = w.map((x) => x * c);
            const a = spectralNorm(w, shape, { dim, backend, ...converge });
            const b = spectralNorm(cw, shape, { dim, backend, ...converge });
            assert.ok(Math.abs(b.sigma - Math.abs(c) * a.sigma) <= 1e-9 * Math.abs(c) * a.sigma, `${b.sigma} vs |${c}|·${a.sigma}`);
          }),
          params(),
        );
      });

      it('σ(2^k·W) = 2^k·σ(W) exactly, float32 and float64', () => {
        fc.assert(
          fc.property(weightArbitrary, fc.integer({ min: -20, max: 20 }), ({ shape, dim, dtype, values }, k) => {
            // Normal numbers only, before and after scaling: a subnormal loses bits when scaled down.
            const w = toArray(dtype, normalOnly(values));
            const scaled = w.map((x) => x * 2 ** k);
            const a = spectralNorm(w, shape, { dim, backend });
            const b = spectralNorm(scaled, shape, { dim, backend });
            assert.equal(b.sigma, a.sigma * 2 ** k);
            assert.equal(b.iterations, a.iterations);
          }),
          params(),
        );
      });

      it('largest row norm ≤ σ ≤ ‖W‖_F, and the estimate is a lower bound of σ', () => {
        fc.assert(
          fc.property(weightArbitrary, ({ shape, dim, dtype, values }) => {
            const w = toArray(dtype, values);
            const m = permutedMatrix(w, shape, dim);
            let maxRow = 0;
            for (let r = 0; r < m.rows; r++) maxRow = Math.max(maxRow, frobenius(m.data.subarray(r * m.cols, (r + 1) * m.cols)));
            const fro = frobenius(w);
            const exact = exactSpectralNorm(w, shape, { dim });
            assert.ok(exact <= fro * (1 + 1e-12), `σ ${exact} > ‖W‖_F ${fro}`);
            assert.ok(exact >= maxRow * (1 - 1e-12), `σ ${exact} < largest row norm ${maxRow}`);
            // Power iteration approaches σ from below; the estimate is rounded to the weight's dtype.
            const estimate = spectralNorm(w, shape, { dim, backend, ...converge }).sigma;
            const slack = dtype === 'float32' ? 1e-6 : 1e-12;
            assert.ok(estimate <= exact * (1 + slack), `estimate ${estimate} above σ ${exact}`);
          }),
          params(),
        );
      });

      it('σ along dim k equals σ of an explicitly permuted copy', () => {
        fc.assert(
          fc.property(weightArbitrary, ({ shape, dim, values }) => {
            const w = Float64Array.from(values);
            const m = permutedMatrix(w, shape, dim);
            const inPlace = spectralNorm(w, shape, { dim, backend, ...converge }).sigma;
            const copied = spectralNorm(m.data, [m.rows, m.cols], { backend, ...converge }).sigma;
            assert.ok(Math.abs(inPlace - copied) <= 1e-9 * copied, `${inPlace} vs ${copied}`);
            const exactInPlace = exactSpectralNorm(w, shape, { dim });
            const exactCopied = exactSpectralNorm(m.data, [m.rows, m.cols]);
            assert.ok(Math.abs(exactInPlace - exactCopied) <= 1e-12 * exactCopied);
          }),
          params(),
        );
      });

      it('a converged estimate agrees with exactSpectralNorm when σ₂ ≤ 0.9·σ₁', () => {
        fc.assert(
          fc.property(weightArbitrary, ({ shape, dim, values }) => {
            const w = Float64Array.from(values);
            const [s1, s2 = 0] = singularValues(permutedMatrix(w, shape, dim));
            // With a gap, each iteration shrinks the error by (σ₂/σ₁)² ≤ 0.81, so a change of 1e-13 bounds it.
            fc.pre(s2 <= 0.9 * s1);
            const exact = exactSpectralNorm(w, shape, { dim });
            const r = spectralNorm(w, shape, { dim, backend, ...converge });
            assert.ok(r.converged, `not converged after ${r.iterations} iterations`);
            assert.ok(Math.abs(r.sigma - exact) <= 1e-9 * exact, `estimate ${r.sigma} vs exact ${exact}`);
          }),
          params(),
        );
      });
    });
  }
});
