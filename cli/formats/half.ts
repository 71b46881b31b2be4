// Half-precision element codecs: IEEE binary16 (F16, tfjs 'float16') and bfloat16 (BF16), to and from float32.
// Decoding is exact (every half value is a float32). Encoding rounds to nearest, ties to even, with overflow to ±Inf,
// gradual underflow to subnormals and ±0, and NaN kept NaN.
import { getFloat16, setFloat16 } from '@petamoriken/float16';

/** float16 bytes (little-endian) → float32, exactly. */
export function decodeFloat16(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = getFloat16(view, 2 * i, true);
  return out;
}

/** float32 → float16 bytes (little-endian), round to nearest even (@petamoriken/float16 implements IEEE 754's rule). */
export function encodeFloat16(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) setFloat16(view, 2 * i, values[i], true);
  return bytes;
}

/** bfloat16 bytes (little-endian) → float32: bfloat16 is the top half of a float32, so this is exact. */
export function decodeBfloat16(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = new Uint32Array(bytes.byteLength >>> 1);
  for (let i = 0; i < bits.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  return new Float32Array(bits.buffer);
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
