// The addon's half-precision conversion (native/cpu/half_convert.h), which the CLI decodes float16 and bfloat16
// weights with: every bit pattern on every SIMD variant the CPU has (each in its own process, as SN_SIMD is read
// once), bitwise the same across variants and exact against the JS decoder; and its argument checks.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { decodeBfloat16, decodeFloat16 } from '../../cli/formats/half';
import { backendInfo } from '../../lib';
import { nativeAddon } from '../../lib/backends';

const ORDER = ['sse2', 'avx2', 'avx512'];
const CHILD = path.join(__dirname, '..', 'children', 'half-convert-check.js');

describe('CLI half precision: the native conversion', () => {
  const info = backendInfo();
  const best = info.cpu.simd;
  const variants = best && ORDER.includes(best) ? ORDER.slice(0, ORDER.indexOf(best) + 1) : best ? [best] : [];
  const digests = new Map<string, string>();

  for (const variant of variants) {
    it(`${variant}: every float16 and bfloat16 bit pattern, odd lengths, unaligned offsets, against the JS decoder`, function () {
      this.timeout(120_000);
      const output = execFileSync(process.execPath, [CHILD], { env: { ...process.env, SN_SIMD: variant }, encoding: 'utf8' });
      const match = /simd=(\S+) digest=([0-9a-f]{64})/.exec(output);
      assert.ok(match, output);
      // The scalar build of a non-x86 host names itself 'scalar'; on x86 the variant asked for is the one that ran.
      if (ORDER.includes(variant)) assert.equal(match[1], variant);
      digests.set(variant, match[2]);
    });
  }

  it('every variant gives the same bits', function () {
    if (digests.size < 2) this.skip();
    assert.equal(new Set(digests.values()).size, 1, JSON.stringify(Object.fromEntries(digests)));
  });

  it('the CLI decoders use it when the addon is loaded (NaN payloads kept bit for bit)', function () {
    const addon = nativeAddon();
    if (!addon) this.skip();
    const bytes = new Uint8Array(131072);
    new Uint16Array(bytes.buffer).forEach((_, i, w) => (w[i] = i));
    for (const [storage, decode] of [
      ['float16', decodeFloat16],
      ['bfloat16', decodeBfloat16],
    ] as const) {
      const direct = new Float32Array(65536);
      addon!.decodeHalf(storage, bytes, direct, 0);
      assert.deepEqual(new Uint32Array(decode(bytes).buffer), new Uint32Array(direct.buffer), storage);
    }
  });

  it('refuses bad arguments with errors naming them, and writes nothing', function () {
    const addon = nativeAddon();
    if (!addon) this.skip();
    const decodeHalf = addon!.decodeHalf.bind(addon) as (...args: unknown[]) => void;
    const dst = new Float32Array(4).fill(7);
    const src = new Uint8Array(8);
    assert.throws(() => decodeHalf('float8', src, dst, 0), { name: 'TypeError', message: /^storage/ });
    assert.throws(() => decodeHalf('float16', new Uint16Array(4), dst, 0), { name: 'TypeError', message: /^src/ });
    assert.throws(() => decodeHalf('float16', src, new Float64Array(4), 0), { name: 'TypeError', message: /^dst/ });
    assert.throws(() => decodeHalf('float16', src, dst, -1), { name: 'RangeError', message: /^at/ });
    assert.throws(() => decodeHalf('float16', src, dst, 0.5), { name: 'RangeError', message: /^at/ });
    assert.throws(() => decodeHalf('float16', src, dst, undefined), { name: 'RangeError', message: /^at/ });
    assert.throws(() => decodeHalf('float16', new Uint8Array(7), dst, 0), { name: 'RangeError', message: /^src/ });
    assert.throws(() => decodeHalf('bfloat16', src, dst, 1), { name: 'RangeError', message: /^dst/ });
    assert.throws(() => decodeHalf('bfloat16', src, dst.subarray(1), 0), { name: 'RangeError', message: /^dst/ });
    assert.deepEqual([...dst], [7, 7, 7, 7]);
    // An empty source writes nothing, even at the end of dst.
    decodeHalf('float16', new Uint8Array(0), dst, 4);
    assert.deepEqual([...dst], [7, 7, 7, 7]);
  });
});
