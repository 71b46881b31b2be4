// PyTorch parity: every case of test/fixtures/pytorch-spectral-norm.json (computed by PyTorch itself, see the README
// beside it), step by step, on every backend, through SpectralNormalizer and through SpectralNormBatch.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { type FloatArray, SpectralNormBatch, SpectralNormalizer } from '../../lib';
import { assertClose, backendsUnderTest, poisoned, snapshot, assertSameBytes, toleranceFor } from '../support/helpers';

interface GoldenStep {
  training: boolean;
  weight: number[];
  normalized: number[];
  sigma: number;
  u?: number[];
  v?: number[];
}

interface GoldenCase {
  name: string;
  api: 'parametrizations' | 'legacy';
  dtype: 'float32' | 'float64';
  shape: number[];
  dim: number;
  nPowerIterations: number;
  eps: number;
  init?: { u: number[]; v: number[] };
  afterInit?: { u: number[]; v: number[]; warmup: number };
  steps: GoldenStep[];
}

const fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'pytorch-spectral-norm.json'), 'utf8'),
) as { source: string; cases: GoldenCase[] };

function typed(dtype: 'float32' | 'float64', values: number[]): FloatArray {
  return dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
}

describe('PyTorch parity (golden vectors)', () => {
  it('has the fixture the README describes', () => {
    assert.match(fixture.source, /torch/);
    assert.ok(fixture.cases.length >= 12);
    assert.ok(fixture.cases.some((c) => c.api === 'legacy'));
    assert.ok(fixture.cases.some((c) => c.dtype === 'float64'));
  });

  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      for (const c of fixture.cases) {
        const tol = toleranceFor(c.dtype);
        const options = {
          dim: c.dim,
          iterations: c.nPowerIterations,
          eps: c.eps,
          dtype: c.dtype,
          legacy: c.api === 'legacy',
          backend,
          ...(c.init ? { u: c.init.u, v: c.init.v } : {}),
        };

        it(`SpectralNormalizer: ${c.name} (${c.api}, ${c.dtype})`, () => {
          const sn = new SpectralNormalizer(c.shape, options);
          assert.equal(sn.backend, backend);
          if (c.afterInit && c.afterInit.warmup > 0) {
            const weight = typed(c.dtype, c.steps[0].weight);
            const before = snapshot(weight);
            sn.warmup(weight, c.afterInit.warmup);
            assertSameBytes(weight, before, 'warm-up weight');
            assertClose(sn.u, c.afterInit.u, tol, 'u after warm-up');
            assertClose(sn.v, c.afterInit.v, tol, 'v after warm-up');
          }
          c.steps.forEach((step, k) => {
            const weight = typed(c.dtype, step.weight);
            const before = snapshot(weight);
            const out = poisoned(c.dtype, weight.length);
            const sigma = sn.step(weight, { update: step.training, out });
            assertSameBytes(weight, before, `step ${k}: weight (out was given)`);
            assertClose(sigma, step.sigma, tol, `step ${k}: sigma`);
            assertClose(out, step.normalized, tol, `step ${k}: normalized`);
            if (step.u) assertClose(sn.u, step.u, tol, `step ${k}: u`);
            if (step.v) assertClose(sn.v, step.v, tol, `step ${k}: v`);
          });
        });

        it(`SpectralNormBatch, in place: ${c.name} (${c.api}, ${c.dtype})`, () => {
          const { u, v, dim, ...batchOptions } = options;
          const batch = new SpectralNormBatch([{ shape: c.shape, dim, u, v, name: c.name }], batchOptions);
          if (c.afterInit && c.afterInit.warmup > 0) {
            batch.warmup([typed(c.dtype, c.steps[0].weight)], c.afterInit.warmup);
            assertClose(batch.u(0), c.afterInit.u, tol, 'u after warm-up');
            assertClose(batch.v(0), c.afterInit.v, tol, 'v after warm-up');
          }
          c.steps.forEach((step, k) => {
            const weight = typed(c.dtype, step.weight);
            const sigmas = batch.step([weight], { update: step.training });
            assert.ok(sigmas instanceof Float64Array && sigmas.length === 1);
            assertClose(sigmas[0], step.sigma, tol, `step ${k}: sigma`);
            assertClose(weight, step.normalized, tol, `step ${k}: normalized in place`);
            if (step.u) assertClose(batch.u(0), step.u, tol, `step ${k}: u`);
            if (step.v) assertClose(batch.v(0), step.v, tol, `step ${k}: v`);
          });
        });
      }
    });
  }
});
