// Run by cli/half-native.test.ts in a child process with SN_SIMD set, since the conversion's variant is chosen once
// per process. Widens every float16 and bfloat16 bit pattern with the addon's decodeHalf, through chunks of awkward
// lengths (vector loop and scalar tail alike), from unaligned byte offsets into a poisoned Float32Array at odd
// element offsets, and checks each result against the JS decoder (bitwise for every value but NaN) and against the
// bit rule (NaN: sign and payload kept, quiet bit set; bfloat16: the bits shifted, NaN too). Prints the variant and a
// digest of the results, which the parent compares across variants.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

import { decodeBfloat16IntoJs, decodeFloat16IntoJs } from '../../cli/formats/half';
import { backendInfo } from '../../lib';
import { nativeAddon } from '../../lib/backends';

const addon = nativeAddon();
if (!addon) throw new Error('the addon did not load');

const PATTERNS = 65536;
const POISON = 0xdeadbeef;
const LENGTHS = [1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 1000, 4099];

/** Every bit pattern, little-endian, `offset` bytes into a fresh buffer. */
function patternsAt(offset: number): Uint8Array {
  const bytes = new Uint8Array(offset + 2 * PATTERNS).subarray(offset);
  for (let p = 0; p < PATTERNS; p++) {
    bytes[2 * p] = p & 0xff;
    bytes[2 * p + 1] = p >>> 8;
  }
  return bytes;
}

/** The float32 bits each pattern must become. */
function expectedBits(storage: 'float16' | 'bfloat16', p: number): number {
  if (storage === 'bfloat16') return (p << 16) >>> 0;
  const isNaN = (p & 0x7c00) === 0x7c00 && (p & 0x3ff) !== 0;
  if (!isNaN) return -1; // the JS decoder's bits, checked below
  return (((p & 0x8000) << 16) | 0x7fc00000 | ((p & 0x3ff) << 13)) >>> 0;
}

const digest = createHash('sha256');
for (const storage of ['float16', 'bfloat16'] as const) {
  const reference = new Float32Array(PATTERNS);
  (storage === 'float16' ? decodeFloat16IntoJs : decodeBfloat16IntoJs)(patternsAt(0), reference, 0);
  const referenceBits = new Uint32Array(reference.buffer);
  for (const [offset, at] of [
    [0, 0],
    [1, 3],
    [3, 1],
    [6, 5],
  ]) {
    const src = patternsAt(offset);
    const out = new Float32Array(at + PATTERNS + 3);
    const bits = new Uint32Array(out.buffer);
    bits.fill(POISON);
    let done = 0;
    for (let k = 0; done < PATTERNS; k++) {
      const n = Math.min(LENGTHS[k % LENGTHS.length], PATTERNS - done);
      addon.decodeHalf(storage, src.subarray(2 * done, 2 * (done + n)), out, at + done);
      // Nothing past the chunk is written.
      assert.equal(bits[at + done + n], POISON, `${storage}: element after a chunk of ${n} at ${done} was written`);
      done += n;
    }
    for (let i = 0; i < at; i++) assert.equal(bits[i], POISON, `${storage}: element ${i} before 'at' was written`);
    for (let p = 0; p < PATTERNS; p++) {
      const got = bits[at + p];
      const rule = expectedBits(storage, p);
      const want = rule === -1 ? referenceBits[p] : rule;
      if (got !== want) {
        assert.fail(
          `${storage} 0x${p.toString(16)} (byte offset ${offset}, at ${at}): 0x${got.toString(16)}, expected 0x${want.toString(16)}`,
        );
      }
      // The JS decoder agrees on the value (NaN with NaN), whatever bits it gives a NaN.
      if (Number.isNaN(reference[p])) assert.ok(Number.isNaN(out[at + p]));
      else assert.equal(got, referenceBits[p]);
    }
    if (offset === 0) digest.update(new Uint8Array(out.buffer, 4 * at, 4 * PATTERNS));
  }
}
console.log(`simd=${backendInfo().cpu.simd} digest=${digest.digest('hex')}`);
