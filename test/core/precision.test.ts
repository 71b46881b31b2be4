// 'mixed' precision and the convergence test: a converge-mode call asking for a tolerance below float32's rounding
// noise on σ sums in float64, so the stopping rule cannot fire on noise (lib/engine.ts, MIXED_TOLERANCE_FLOOR).
import * as assert from 'node:assert/strict';

import { exactSpectralNorm, spectralNorm } from '../../lib';
import { MIXED_TOLERANCE_FLOOR } from '../../lib/engine';
import { backendsUnderTest, randomArray } from '../support/helpers';

describe('precision and the convergence test', () => {
  for (const backend of backendsUnderTest()) {
    describe(backend, () => {
      it(`below a tolerance of ${MIXED_TOLERANCE_FLOOR}, 'mixed' gives the bits of 'float64'`, () => {
        for (const [rows, cols] of [
          [512, 5],
          [37, 61],
          [1, 300],
        ]) {
          const w = randomArray('float32', rows * cols);
          for (const tolerance of [0, 1e-9, MIXED_TOLERANCE_FLOOR / 2]) {
            const mixed = spectralNorm(w, [rows, cols], { backend, tolerance, maxIterations: 3000, precision: 'mixed' });
            const exact = spectralNorm(w, [rows, cols], { backend, tolerance, maxIterations: 3000, precision: 'float64' });
            assert.equal(mixed.iterations, exact.iterations, `${rows}×${cols}, tolerance ${tolerance}: iterations`);
            assert.ok(Object.is(mixed.sigma, exact.sigma), `${rows}×${cols}, tolerance ${tolerance}: σ ${mixed.sigma} vs ${exact.sigma}`);
          }
        }
      });

      it('at 1e-9 a float32 512×5 layer converges to its exact σ (the stop that fired on rounding noise)', () => {
        // 40 draws; with float32 sums about 1 in 250 of them stopped more than 2e-6 low.
        for (let trial = 0; trial < 40; trial++) {
          const w = randomArray('float32', 512 * 5);
          const r = spectralNorm(w, [512, 5], { backend, tolerance: 1e-9, maxIterations: 5000 });
          const exact = exactSpectralNorm(w, [512, 5]);
          if (!r.converged) continue;
          assert.ok(Math.abs(r.sigma / exact - 1) <= 2e-6, `trial ${trial}: σ ${r.sigma} against exact ${exact}`);
        }
      });
    });
  }
});
