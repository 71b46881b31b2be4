// exactSpectralNorm: against LAPACK (numpy's gesdd, test/fixtures/lapack-sigma.json) and against an independent
// Jacobi eigenvalue reference written here.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { exactSpectralNorm, spectralNorm } from '../../lib';
import { gaussian, randomInt } from '../support/helpers';
import { permutedMatrix, singularValues } from '../support/reference';

interface LapackCase {
  name: string;
  shape: number[];
  dim: number;
  dtype: 'float32' | 'float64';
  weight: number[];
  sigma: number;
}

const lapack = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'lapack-sigma.json'), 'utf8')) as {
  source: string;
  cases: LapackCase[];
};

function relativeError(a: number, b: number): number {
  return b === 0 ? Math.abs(a) : Math.abs(a - b) / Math.abs(b);
}

describe('exactSpectralNorm', () => {
  it(`matches LAPACK to 1e-10 relative on every fixture case (${lapack.source})`, () => {
    for (const c of lapack.cases) {
      const weight = c.dtype === 'float32' ? Float32Array.from(c.weight) : Float64Array.from(c.weight);
      const sigma = exactSpectralNorm(weight, c.shape, { dim: c.dim });
      assert.ok(relativeError(sigma, c.sigma) <= 1e-10, `${c.name}: ${sigma}, LAPACK ${c.sigma} (rel ${relativeError(sigma, c.sigma)})`);
    }
  });

  it('matches an independent Jacobi reference on random matrices of any aspect ratio and rank', () => {
    for (let trial = 0; trial < 40; trial++) {
      const rows = randomInt(1, 30);
      const cols = randomInt(1, 30);
      const rank = randomInt(1, Math.min(rows, cols));
      // A random matrix of the chosen rank: (rows × rank)(rank × cols).
      const a = Array.from({ length: rows * rank }, gaussian);
      const b = Array.from({ length: rank * cols }, gaussian);
      const w = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          let s = 0;
          for (let k = 0; k < rank; k++) s += a[r * rank + k] * b[k * cols + c];
          w[r * cols + c] = s;
        }
      }
      const expected = singularValues(permutedMatrix(w, [rows, cols], 0))[0];
      const sigma = exactSpectralNorm(w, [rows, cols]);
      assert.ok(relativeError(sigma, expected) <= 1e-11, `${rows}×${cols} rank ${rank}: ${sigma} vs Jacobi ${expected}`);
    }
  });

  it('reads every dim of a 4-D weight in place, as an explicit permuted copy does', () => {
    const shape = [5, 4, 3, 6];
    const w = Float64Array.from({ length: 360 }, gaussian);
    for (let dim = -4; dim < 4; dim++) {
      const d = dim < 0 ? dim + 4 : dim;
      const copy = permutedMatrix(w, shape, d);
      const viaCopy = exactSpectralNorm(copy.data, [copy.rows, copy.cols]);
      assert.ok(relativeError(exactSpectralNorm(w, shape, { dim }), viaCopy) <= 1e-13, `dim ${dim}`);
    }
  });

  it('is exact for a zero matrix and throws a RangeError for NaN or Infinity', () => {
    assert.equal(exactSpectralNorm(new Float32Array(12), [3, 4]), 0);
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = Float64Array.from({ length: 12 }, gaussian);
      w[5] = bad;
      assert.throws(
        () => exactSpectralNorm(w, [3, 4]),
        (e: Error) => e instanceof RangeError && /weight contains NaN or Infinity/.test(e.message),
      );
    }
  });

  it('agrees with a converged spectralNorm on a matrix with a clear spectral gap', () => {
    const shape = [120, 90];
    const w = Float64Array.from({ length: 120 * 90 }, gaussian);
    // A strong rank-one component makes the top singular value well separated.
    const a = Float64Array.from({ length: 120 }, gaussian);
    const b = Float64Array.from({ length: 90 }, gaussian);
    for (let r = 0; r < 120; r++) for (let c = 0; c < 90; c++) w[r * 90 + c] += 0.5 * a[r] * b[c];
    const exact = exactSpectralNorm(w, shape);
    const power = spectralNorm(w, shape, { tolerance: 1e-14, maxIterations: 100000 });
    assert.ok(power.converged);
    assert.ok(relativeError(power.sigma, exact) <= 1e-10, `power ${power.sigma} vs exact ${exact}`);
  });
});
