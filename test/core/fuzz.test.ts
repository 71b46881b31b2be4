// Fuzzing with fast-check: random shapes, dims, options and call styles (sync, async, batch), with or without one
// fault in the arguments. Each call either gives the float64 reference's answer, or a TypeError or RangeError that
// names the argument, with the weight, out, u and v exactly as they were (the whole batch, for a batch).
import * as assert from 'node:assert/strict';

import fc from 'fast-check';

import { type FloatArray, SpectralNormBatch, SpectralNormalizer } from '../../lib';
import {
  assertClose,
  assertSameBytes,
  backendsUnderTest,
  poisoned,
  product,
  randomArray,
  testSeed,
  toleranceFor,
} from '../support/helpers';
import { permutedMatrix, referenceDivide, referenceStep } from '../support/reference';

const FAULTS = [
  'none',
  'none',
  'none',
  'nan',
  'inf',
  'length',
  'dtype',
  'out-length',
  'out-overlap',
  'update-type',
  'unknown-option',
] as const;
type Fault = (typeof FAULTS)[number];

const caseArbitrary = fc
  .integer({ min: 1, max: 4 })
  .chain((ndim) => fc.array(fc.integer({ min: 1, max: ndim <= 2 ? 70 : 7 }), { minLength: ndim, maxLength: ndim }))
  .chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      dim: fc.integer({ min: -shape.length, max: shape.length - 1 }),
      dtype: fc.constantFrom('float32' as const, 'float64' as const),
      legacy: fc.boolean(),
      iterations: fc.integer({ min: 1, max: 3 }),
      update: fc.boolean(),
      useOut: fc.boolean(),
      style: fc.constantFrom('sync' as const, 'async' as const, 'batch' as const),
      fault: fc.constantFrom(...FAULTS),
      where: fc.nat(),
    }),
  );

interface Case {
  shape: number[];
  dim: number;
  dtype: 'float32' | 'float64';
  legacy: boolean;
  iterations: number;
  update: boolean;
  useOut: boolean;
  style: 'sync' | 'async' | 'batch';
  fault: Fault;
  where: number;
}

function otherDtype(dtype: 'float32' | 'float64', length: number): FloatArray {
  return dtype === 'float32' ? new Float64Array(length).fill(0.5) : new Float32Array(length).fill(0.5);
}

/** The arguments of the call, with the fault applied, and what the call may write. */
function argumentsFor(c: Case): { weight: FloatArray; out?: FloatArray; options: Record<string, unknown> } {
  const n = product(c.shape);
  let weight = randomArray(c.dtype, n);
  let out: FloatArray | undefined = c.useOut ? poisoned(c.dtype, n) : undefined;
  const options: Record<string, unknown> = { update: c.update };
  switch (c.fault) {
    case 'nan':
      weight[c.where % n] = NaN;
      break;
    case 'inf':
      weight[c.where % n] = c.where % 2 ? Infinity : -Infinity;
      break;
    case 'length':
      weight = randomArray(c.dtype, n + 1 + (c.where % 3));
      break;
    case 'dtype':
      weight = otherDtype(c.dtype, n);
      break;
    case 'out-length':
      out = poisoned(c.dtype, n + 1);
      break;
    case 'out-overlap': {
      // Shifted by 1 to n - 1 elements: a partial overlap (a 1-element weight has none, so it gets an out of the
      // weight's own buffer at the same place but as a view of a different length).
      const both = randomArray(c.dtype, 2 * n);
      const shift = n === 1 ? 0 : 1 + (c.where % (n - 1));
      weight = both.subarray(0, n);
      out = n === 1 ? both.subarray(0, 2) : both.subarray(shift, shift + n);
      break;
    }
    case 'update-type':
      options.update = 'yes';
      break;
    case 'unknown-option':
      options.updte = true;
      break;
    default:
  }
  if (out !== undefined) options.out = out;
  return { weight, out, options };
}

function checkError(error: unknown, c: Case): void {
  assert.ok(error instanceof TypeError || error instanceof RangeError, `${c.fault}: got ${String(error)}`);
  assert.match((error as Error).message, /^(weights?(\[\d+\])?|options(\.\w+)?(\[\d+\])?)\b/, `${c.fault}: the message names the argument`);
}

describe('fuzzing: any arguments give the right answer or a clear error with nothing modified', () => {
  for (const backend of backendsUnderTest()) {
    it(`backend ${backend}`, async () => {
      await fc.assert(
        fc.asyncProperty(caseArbitrary, async (c) => {
          const settings = { dim: c.dim, dtype: c.dtype, legacy: c.legacy, iterations: c.iterations, backend, seed: 7 };
          const other = { shape: [9, 4], dim: 0 };
          const otherWeight = randomArray(c.dtype, 36);
          const otherBefore = otherWeight.slice();
          const sn = c.style === 'batch' ? null : new SpectralNormalizer(c.shape, settings);
          const { dim: _dim, ...batchSettings } = settings;
          const batch = c.style === 'batch' ? new SpectralNormBatch([{ shape: c.shape, dim: c.dim }, other], batchSettings) : null;
          const u0 = sn ? sn.u : batch!.u(0);
          const v0 = sn ? sn.v : batch!.v(0);
          const { weight, out, options } = argumentsFor(c);
          const weightBefore = weight.slice();
          const outBefore = out?.slice();

          let sigma: number;
          try {
            if (sn && c.style === 'sync') sigma = sn.step(weight, options);
            else if (sn) sigma = await sn.stepAsync(weight, options);
            else {
              const batchOptions = { ...options, ...(out ? { out: [out, poisoned(c.dtype, 36)] } : {}) };
              sigma = batch!.step([weight, otherWeight], batchOptions)[0];
            }
          } catch (error) {
            assert.notEqual(c.fault, 'none', `a valid call failed: ${String(error)}`);
            checkError(error, c);
            assertSameBytes(weight, weightBefore, 'weight');
            if (out) assertSameBytes(out, outBefore!, 'out');
            assertSameBytes(sn ? sn.u : batch!.u(0), u0, 'u');
            assertSameBytes(sn ? sn.v : batch!.v(0), v0, 'v');
            assertSameBytes(otherWeight, otherBefore, "the batch's other layer");
            return;
          }
          assert.equal(c.fault, 'none', `a call with fault '${c.fault}' succeeded`);
          // The float64 reference, from the same start vectors.
          const tol = toleranceFor(c.dtype);
          const dim = c.dim < 0 ? c.dim + c.shape.length : c.dim;
          const written = out ?? weight;
          if (c.shape.length === 1 && !c.legacy) {
            const norm = Math.hypot(...weightBefore);
            assertClose(sigma, norm, tol, 'σ of a 1-D weight');
          } else {
            const matrix = permutedMatrix(weightBefore, c.shape.length === 1 ? [c.shape[0], 1] : c.shape, c.shape.length === 1 ? 0 : dim);
            const ref = referenceStep(matrix, u0, v0, c.update ? c.iterations : 0, 1e-12, c.legacy, c.dtype);
            assertClose(sigma, ref.sigma, tol, 'σ');
          }
          assertClose(written, referenceDivide(weightBefore, sigma, c.dtype), { rtol: 0, atol: 0 }, 'W/σ');
        }),
        { numRuns: 120, seed: testSeed() },
      );
    });
  }
});
