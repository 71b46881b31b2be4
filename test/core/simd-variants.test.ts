// Each kernel variant the running CPU supports, in its own process (the variant is chosen once per process, and
// SN_SIMD caps it), against the float64 reference.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { backendInfo } from '../../lib';
import { testSeed } from '../support/helpers';

const ORDER = ['sse2', 'avx2', 'avx512'];

describe('SIMD kernel variants', () => {
  const info = backendInfo();
  const best = info.cpu.simd;
  const variants = best && ORDER.includes(best) ? ORDER.slice(0, ORDER.indexOf(best) + 1) : [];

  it('the native backend reports the variant it selected', function () {
    if (!info.cpu.available) this.skip();
    assert.ok(best !== null && ['sse2', 'avx2', 'avx512', 'scalar'].includes(best), `simd: ${best}`);
  });

  for (const variant of variants) {
    it(`${variant} agrees with the float64 reference`, () => {
      const output = execFileSync(process.execPath, [path.join(__dirname, '..', 'children', 'simd-variant-check.js')], {
        env: { ...process.env, SN_SIMD: variant, SN_TEST_SEED: String(testSeed()) },
        encoding: 'utf8',
      });
      assert.match(output, new RegExp(`simd=${variant}\\b`));
    });
  }
});
