// The four floating-point storages the CLI computes on, whatever the format calls them (safetensors F32/F64/F16/BF16,
// ONNX FLOAT/DOUBLE/FLOAT16/BFLOAT16): how their little-endian bytes decode to float32 or float64, and back.
import type { FloatArray } from '../../lib';
import type { ElementCodec } from '../file-io';
import { decodeBfloat16Into, decodeFloat16Into, encodeBfloat16, encodeFloat16 } from './half';

export type FloatStorage = 'float32' | 'float64' | 'float16' | 'bfloat16';

export const CODECS: Record<FloatStorage, ElementCodec> = {
  // The bytes are the values (this assumes a little-endian host, as every platform Node supports is).
  float32: { bytes: 4, wide: 'float32', decode: null },
  float64: { bytes: 8, wide: 'float64', decode: null },
  float16: { bytes: 2, wide: 'float32', decode: (src, dst, at) => decodeFloat16Into(src, dst as Float32Array, at) },
  bfloat16: { bytes: 2, wide: 'float32', decode: (src, dst, at) => decodeBfloat16Into(src, dst as Float32Array, at) },
};

/** Values (of the type CODECS[storage] decodes to) → stored bytes, rounding half precision to nearest even. */
export function encodeValues(storage: FloatStorage, values: FloatArray): Uint8Array {
  switch (storage) {
    case 'float32':
    case 'float64':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'float16':
      return encodeFloat16(values as Float32Array);
    case 'bfloat16':
      return encodeBfloat16(values as Float32Array);
  }
}

/** Elements encoded at a time by writeValues: half precision needs a buffer, and this bounds it at 8 MiB. */
const ENCODE_ELEMENTS = 4 << 20;

/**
 * Writes values as stored bytes through `emit(bytes, byteOffset)`, in pieces: float32 and float64 are written as
 * they are, half precision is encoded a piece at a time, so no second copy of the tensor is ever held.
 */
export async function writeValues(
  storage: FloatStorage,
  values: FloatArray,
  emit: (bytes: Uint8Array, byteOffset: number) => Promise<void>,
): Promise<void> {
  if (storage === 'float32' || storage === 'float64') {
    await emit(encodeValues(storage, values), 0);
    return;
  }
  for (let at = 0; at < values.length; at += ENCODE_ELEMENTS) {
    await emit(encodeValues(storage, values.subarray(at, at + ENCODE_ELEMENTS)), 2 * at);
  }
}

/** Checks that a transform's replacement has the type and length `read` gave; anything else is a bug here. */
export function checkReplacement(name: string, storage: FloatStorage, values: FloatArray, count: number): void {
  const expected = storage === 'float64' ? Float64Array : Float32Array;
  if (!(values instanceof expected) || values.length !== count)
    throw new Error(`internal: replacement for ${name} has the wrong type or length`);
}
