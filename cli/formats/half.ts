// Half-precision element codecs: IEEE binary16 (F16, tfjs 'float16') and bfloat16 (BF16), to and from float32.
// Decoding is exact (every half value is a float32): the native addon's conversion when it is loaded (vcvtph2ps,
// native/cpu/half_convert.h), else a table lookup in JS. Both give the same float32 bits for every value but NaN,
// which stays NaN (the addon keeps its sign and payload; a JS Float32Array store may not). Encoding rounds to
// nearest, ties to even, with overflow to ±Inf, gradual underflow to subnormals and ±0, and NaN kept NaN.
import { getFloat16, setFloat16 } from '@petamoriken/float16';

import type { NativeAddon } from '../../binding';
import { nativeAddon } from '../../lib/backends';

let native: NativeAddon['decodeHalf'] | null | undefined;

/** The addon's decodeHalf, or null without the addon (or with an older build that lacks it). */
function nativeDecode(): NativeAddon['decodeHalf'] | null {
  if (native === undefined) {
    const addon = nativeAddon();
    native = addon && typeof addon.decodeHalf === 'function' ? addon.decodeHalf.bind(addon) : null;
  }
  return native;
}

let float16Table: Float32Array | null = null;

/** Every float16 bit pattern's float32 value, from @petamoriken/float16: one table lookup per element decodes fast. */
function float16Values(): Float32Array {
  if (float16Table === null) {
    const view = new DataView(new ArrayBuffer(2));
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      view.setUint16(0, bits, true);
      float16Table[bits] = getFloat16(view, 0, true);
    }
  }
  return float16Table;
}

/** Little-endian 16-bit words of `bytes`, as a typed array when aligned (the usual case), else copied. */
function words(bytes: Uint8Array): Uint16Array {
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 1);
  return new Uint16Array(bytes.slice().buffer, 0, bytes.byteLength >>> 1);
}

/** float16 bytes (little-endian) → float32 values written into `out` from element `at` on, exactly. */
export function decodeFloat16Into(bytes: Uint8Array, out: Float32Array, at: number): void {
  const decode = nativeDecode();
  if (decode) decode('float16', bytes, out, at);
  else decodeFloat16IntoJs(bytes, out, at);
}

/** decodeFloat16Into in JS: the fallback without the addon, and the tests' reference for it. */
export function decodeFloat16IntoJs(bytes: Uint8Array, out: Float32Array, at: number): void {
  const table = float16Values();
  const w = words(bytes);
  for (let i = 0; i < w.length; i++) out[at + i] = table[w[i]];
}

/** float16 bytes (little-endian) → float32, exactly. */
export function decodeFloat16(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength >>> 1);
  decodeFloat16Into(bytes, out, 0);
  return out;
}

/** float32 → float16 bytes (little-endian), round to nearest even (@petamoriken/float16 implements IEEE 754's rule). */
export function encodeFloat16(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) setFloat16(view, 2 * i, values[i], true);
  return bytes;
}

/** bfloat16 bytes (little-endian) → float32 into `out` from `at`: bfloat16 is the top half of a float32, so exact. */
export function decodeBfloat16Into(bytes: Uint8Array, out: Float32Array, at: number): void {
  const decode = nativeDecode();
  if (decode) decode('bfloat16', bytes, out, at);
  else decodeBfloat16IntoJs(bytes, out, at);
}

/** decodeBfloat16Into in JS: the fallback without the addon, and the tests' reference for it. */
export function decodeBfloat16IntoJs(bytes: Uint8Array, out: Float32Array, at: number): void {
  const w = words(bytes);
  const bits = new Uint32Array(out.buffer, out.byteOffset + 4 * at, w.length);
  for (let i = 0; i < w.length; i++) bits[i] = w[i] << 16;
}

/** bfloat16 bytes (little-endian) → float32, exactly. */
export function decodeBfloat16(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength >>> 1);
  decodeBfloat16Into(bytes, out, 0);
  return out;
}

/**
 * float32 → bfloat16 bytes (little-endian), round to nearest even on the bit pattern. No maintained npm package
 * covers bfloat16, and the rule is short: add 0x7fff plus the lowest kept bit, then drop 16 bits. A carry out of the
 * mantissa raises the exponent, which is exactly right, up to the largest finite value rounding to Inf. Subnormals
 * need no special case, as bfloat16 keeps float32's exponent. NaN is kept quiet instead of rounding to Inf.
 */
export function encodeBfloat16(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    const isNaN = (b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0;
    const half = isNaN ? (b >>> 16) | 0x0040 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    view.setUint16(2 * i, half, true);
  }
  return bytes;
}
