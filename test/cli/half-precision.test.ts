// Half-precision codecs of the CLI: decoding is exact, encoding rounds to nearest with ties to even, including
// subnormals, overflow to ±Inf and NaN, checked against a float64 reference that knows nothing of bit tricks.
import * as assert from 'node:assert/strict';

import {
  decodeBfloat16,
  decodeBfloat16IntoJs,
  decodeFloat16,
  decodeFloat16IntoJs,
  encodeBfloat16,
  encodeFloat16,
} from '../../cli/formats/half';
import { random } from '../support/helpers';

/** binary16's value from its fields, in float64. */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function widen(bytes: Uint8Array, decodeInto: (bytes: Uint8Array, out: Float32Array, at: number) => void): Float32Array {
  const out = new Float32Array(bytes.byteLength / 2);
  decodeInto(bytes, out, 0);
  return out;
}

function bfloat16Value(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/**
 * Round to nearest, ties to even, by search: the two representable neighbours of x (by value), the nearer one,
 * the one with an even last bit on a tie; past the largest finite value by half an ulp or more, ±Infinity.
 */
function referenceRound(x: number, value: (bits: number) => number, maxFinite: number, signBit: number): number {
  if (Number.isNaN(x)) return NaN;
  const magnitude = Math.abs(x);
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  // Bits of non-negative values increase with the value, so binary search over 0 .. maxFinite.
  let lo = 0;
  let hi = maxFinite;
  if (magnitude >= value(maxFinite)) {
    const ulp = value(maxFinite) - value(maxFinite - 1);
    return magnitude >= value(maxFinite) + ulp / 2 ? sign | (maxFinite + 1) : sign | maxFinite;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (value(mid) <= magnitude) lo = mid;
    else hi = mid;
  }
  const down = magnitude - value(lo);
  const up = value(hi) - magnitude;
  const pick = down < up ? lo : up < down ? hi : lo % 2 === 0 ? lo : hi;
  return sign | pick;
}

function bitsOf16(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true));
}

function bytesOf16(bits: number[]): Uint8Array {
  const bytes = new Uint8Array(bits.length * 2);
  bits.forEach((b, i) => new DataView(bytes.buffer).setUint16(2 * i, b, true));
  return bytes;
}

const ALL_16 = Array.from({ length: 65536 }, (_, i) => i);

/** Random float32 values over every exponent, subnormals, halfway cases and special values included. */
function awkwardFloat32(count: number): Float32Array {
  const bits = new Uint32Array(count);
  for (let i = 0; i < count; i++) bits[i] = Math.floor(random() * 2 ** 32);
  const values = new Float32Array(bits.buffer);
  const specials = [
    0,
    -0,
    Infinity,
    -Infinity,
    NaN,
    65504,
    65519.996,
    65520,
    -65520,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    1.5 * 2 ** -24,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    2 ** -14,
    2 ** -14 - 2 ** -25,
    3.3895314e38,
    3.4028235e38,
    1e-45,
    -1e-40,
    1.00390625,
    1.01171875,
  ];
  values.set(specials);
  // Values near half-precision's range, where float16's own rounding matters (the random bits mostly miss it).
  for (let i = specials.length; i < count / 2; i++) values[i] = (random() - 0.5) * 2 ** (Math.floor(random() * 44) - 28);
  return values;
}

describe('CLI half precision', () => {
  // decodeFloat16 and decodeBfloat16 use the addon's conversion when it loaded (half-native.test.ts tests it on every
  // SIMD variant); the JS decoders are the fallback without it, and both must be exact.
  const decoders = {
    chosen: { float16: decodeFloat16, bfloat16: decodeBfloat16 },
    js: {
      float16: (bytes: Uint8Array) => widen(bytes, decodeFloat16IntoJs),
      bfloat16: (bytes: Uint8Array) => widen(bytes, decodeBfloat16IntoJs),
    },
  };
  for (const [which, decode] of Object.entries(decoders)) {
    it(`float16 decodes every one of the 65536 bit patterns exactly (${which} decoder)`, () => {
      const decoded = decode.float16(bytesOf16(ALL_16));
      for (const bits of ALL_16) {
        const expected = float16Value(bits);
        assert.ok(
          Object.is(decoded[bits], expected) || (Number.isNaN(expected) && Number.isNaN(decoded[bits])),
          `0x${bits.toString(16)}: ${decoded[bits]}, expected ${expected}`,
        );
      }
    });

    it(`bfloat16 decodes every one of the 65536 bit patterns exactly (${which} decoder)`, () => {
      const decoded = decode.bfloat16(bytesOf16(ALL_16));
      for (const bits of ALL_16) {
        const expected = bfloat16Value(bits);
        assert.ok(Object.is(decoded[bits], expected) || (Number.isNaN(expected) && Number.isNaN(decoded[bits])), `0x${bits.toString(16)}`);
      }
    });
  }

  it('float16 encoding rounds to nearest even: ties, subnormals, overflow to ±Inf, NaN, -0', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02],
      [65504, 0x7bff],
      [65519.996, 0x7bff],
      [65520, 0x7c00],
      [-65520, 0xfc00],
      [Infinity, 0x7c00],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [-(2 ** -25), 0x8000],
      [3 * 2 ** -26, 0x0001],
      [1.5 * 2 ** -24, 0x0002],
      [2 ** -14 - 2 ** -25, 0x0400],
      [-0, 0x8000],
      [1e-45, 0x0000],
    ];
    const bits = bitsOf16(encodeFloat16(Float32Array.from(cases, ([x]) => x)));
    cases.forEach(([x, expected], i) =>
      assert.equal(bits[i], expected, `${x}: 0x${bits[i].toString(16)}, expected 0x${expected.toString(16)}`),
    );
    const nan = bitsOf16(encodeFloat16(Float32Array.of(NaN, -NaN)));
    for (const b of nan) assert.ok((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0, `NaN encodes as NaN, got 0x${b.toString(16)}`);
  });

  it('float16 encoding matches the reference on random float32 values of every magnitude', () => {
    const values = awkwardFloat32(20000);
    const bits = bitsOf16(encodeFloat16(values));
    values.forEach((x, i) => {
      const expected = referenceRound(x, float16Value, 0x7bff, 0x8000);
      if (Number.isNaN(expected)) assert.ok(Number.isNaN(float16Value(bits[i])), `${x}`);
      else assert.equal(bits[i], expected, `${x}: 0x${bits[i].toString(16)}, expected 0x${expected.toString(16)}`);
    });
  });

  it('bfloat16 encoding matches the reference on random float32 values, subnormals and overflow included', () => {
    const values = awkwardFloat32(20000);
    const bits = bitsOf16(encodeBfloat16(values));
    values.forEach((x, i) => {
      const expected = referenceRound(x, bfloat16Value, 0x7f7f, 0x8000);
      if (Number.isNaN(expected)) assert.ok(Number.isNaN(bfloat16Value(bits[i])), `${x}: NaN must stay NaN, got 0x${bits[i].toString(16)}`);
      else assert.equal(bits[i], expected, `${x}: 0x${bits[i].toString(16)}, expected 0x${expected.toString(16)}`);
    });
  });

  it('bfloat16 keeps a NaN whose payload sits in the dropped bits a NaN', () => {
    const nan = new Float32Array(new Uint32Array([0x7f800001, 0xff800001, 0x7fc00000]).buffer);
    for (const b of bitsOf16(encodeBfloat16(nan))) assert.ok((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0, `0x${b.toString(16)}`);
  });

  it('decode(encode(x)) is the identity on every representable half value', () => {
    const f16 = decodeFloat16(bytesOf16(ALL_16));
    const back16 = bitsOf16(encodeFloat16(f16));
    const bf = decodeBfloat16(bytesOf16(ALL_16));
    const backBf = bitsOf16(encodeBfloat16(bf));
    for (const bits of ALL_16) {
      if (!Number.isNaN(f16[bits])) assert.equal(back16[bits], bits, `float16 0x${bits.toString(16)}`);
      if (!Number.isNaN(bf[bits])) assert.equal(backBf[bits], bits, `bfloat16 0x${bits.toString(16)}`);
    }
  });
});
