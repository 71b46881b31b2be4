// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the tensors' bytes. The header maps
// each tensor name to { dtype, shape, data_offsets: [begin, end] } (relative to the end of the header), with an
// optional "__metadata__" map of strings. No maintained npm package reads it by offset from a file handle, so this
// module does, and validates the header as strictly as the reference implementation: known dtypes, sizes that match
// the shapes, and offsets that tile the data exactly, with no gap, overlap or trailing byte.
import type * as fs from 'node:fs/promises';

import type { FloatArray } from '../../lib';
import { ModelFileError, firstLine } from '../errors';
import { StagedOutput, copyRange, openForReading, readExactly, sameFile, writeAll } from '../file-io';
import { type ModelFile, type ModelTensor, type RewriteResult, type Transform, elementCount } from '../model';
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from './half';

/** Bits per element of every dtype the format defines. */
const DTYPE_BITS: Record<string, number> = {
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
  I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, I64: 64, U64: 64, F64: 64, C64: 64,
};

/** The dtypes the CLI computes on; all others pass through untouched. */
const NUMERIC = new Set(['F16', 'BF16', 'F32', 'F64']);

/** The reference implementation's limit: a larger header is a corrupt length field, not a real model. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensor extends ModelTensor {
  /** Byte offsets relative to the start of the data, i.e. 8 + N in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** The 8-byte length and the JSON, exactly as in the file. */
  headerBytes: Uint8Array;
  dataStart: number;
  metadata: Record<string, string> | null;
  /** In header order. */
  tensors: SafetensorsTensor[];
}

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** Parses and validates the header of a file of `fileSize` bytes. */
export async function readSafetensorsHeader(handle: fs.FileHandle, file: string, fileSize: number): Promise<SafetensorsHeader> {
  if (fileSize < 8) throw new ModelFileError(file, `truncated: ${fileSize} bytes, too short for the 8-byte header length`);
  const lengthBytes = await readExactly(handle, 0, 8, file);
  const length = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new ModelFileError(file, `header length ${length} is absurd (the format's limit is ${MAX_HEADER_BYTES} bytes): not a safetensors file, or a corrupt one`);
  }
  const n = Number(length);
  if (8 + n > fileSize) throw new ModelFileError(file, `truncated: the header claims ${n} bytes but the file has only ${fileSize - 8} after the length`);
  const json = await readExactly(handle, 8, n, file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (error) {
    throw new ModelFileError(file, `invalid JSON header: ${firstLine(error)}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelFileError(file, 'invalid header: the JSON is not an object');
  }
  const dataStart = 8 + n;
  const dataSize = fileSize - dataStart;
  let metadata: Record<string, string> | null = null;
  const tensors: SafetensorsTensor[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(file, value);
      continue;
    }
    tensors.push(checkEntry(file, name, value));
  }
  checkTiling(file, tensors, dataSize);
  const headerBytes = new Uint8Array(dataStart);
  headerBytes.set(lengthBytes, 0);
  headerBytes.set(json, 8);
  return { headerBytes, dataStart, metadata, tensors };
}

function checkMetadata(file: string, value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ModelFileError(file, 'invalid header: __metadata__ must be an object of strings');
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new ModelFileError(file, `invalid header: __metadata__.${key} must be a string`);
  }
  return value as Record<string, string>;
}

function checkEntry(file: string, name: string, value: unknown): SafetensorsTensor {
  const bad = (detail: string) => new ModelFileError(file, `invalid header: ${detail}`, name);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw bad('the entry is not an object');
  const entry = value as Record<string, unknown>;
  for (const key of Object.keys(entry)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') throw bad(`unknown field '${key}'`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw bad('dtype must be a string');
  const bits = DTYPE_BITS[dtype];
  if (bits === undefined) throw new ModelFileError(file, `unknown dtype '${dtype}' (known: ${Object.keys(DTYPE_BITS).join(', ')})`, name);
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) throw bad('shape must be an array of non-negative integers');
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw bad('data_offsets must be [begin, end], non-negative integers');
  }
  const [begin, end] = offsets as number[];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
  const count = elementCount(shape);
  const bitLength = count * bits;
  if (!Number.isSafeInteger(bitLength) || bitLength % 8 !== 0 || bitLength / 8 !== end - begin) {
    throw new ModelFileError(
      file,
      `shape/size mismatch: shape [${shape.join(', ')}] of ${dtype} needs ${bitLength / 8} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      name,
    );
  }
  return { name, shape: shape.slice(), dtype, numeric: NUMERIC.has(dtype) && count > 0, byteLength: end - begin, begin, end };
}

/** The tensors must cover the data exactly, in some order: no overlap, no gap, nothing past the end or after it. */
function checkTiling(file: string, tensors: readonly SafetensorsTensor[], dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  let previous: SafetensorsTensor | null = null;
  for (const t of sorted) {
    if (t.end > dataSize) {
      throw new ModelFileError(file, `data_offsets [${t.begin}, ${t.end}] out of range: the data section has ${dataSize} bytes (truncated file?)`, t.name);
    }
    if (t.begin < position) {
      throw new ModelFileError(file, `data_offsets [${t.begin}, ${t.end}] overlap tensor '${previous?.name}' [${previous?.begin}, ${previous?.end}]`, t.name);
    }
    if (t.begin > position) throw new ModelFileError(file, `data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - position} bytes before them`, t.name);
    position = t.end;
    previous = t;
  }
  if (position !== dataSize) throw new ModelFileError(file, `${dataSize - position} bytes after the last tensor belong to none`);
}

/** Raw little-endian bytes → values the library computes on. */
export function decodeSafetensors(dtype: string, bytes: Uint8Array): FloatArray {
  // The bytes come from readExactly, which allocates a fresh, aligned buffer (this assumes a little-endian host).
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    case 'F64':
      return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
    case 'F16':
      return decodeFloat16(bytes);
    case 'BF16':
      return decodeBfloat16(bytes);
    default:
      throw new Error(`dtype ${dtype} is not numeric`);
  }
}

export function encodeSafetensors(dtype: string, values: FloatArray): Uint8Array {
  switch (dtype) {
    case 'F32':
    case 'F64':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16':
      return encodeFloat16(values as Float32Array);
    case 'BF16':
      return encodeBfloat16(values as Float32Array);
    default:
      throw new Error(`dtype ${dtype} is not numeric`);
  }
}

export async function openSafetensors(file: string): Promise<ModelFile> {
  const handle = await openForReading(file);
  try {
    const size = (await handle.stat()).size;
    const header = await readSafetensorsHeader(handle, file, size);
    return safetensorsModel(file, handle, header);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function safetensorsModel(file: string, handle: fs.FileHandle, header: SafetensorsHeader): ModelFile {
  const read = async (tensor: ModelTensor) => {
    const t = tensor as SafetensorsTensor;
    if (!t.numeric) throw new Error(`tensor ${t.name} is not numeric`);
    return decodeSafetensors(t.dtype, await readExactly(handle, header.dataStart + t.begin, t.byteLength, file, t.name));
  };

  const rewrite = async (output: string, selected: ReadonlySet<ModelTensor>, transform: Transform, inPlace: boolean): Promise<RewriteResult> => {
    if (!inPlace && (await sameFile(output, file))) {
      throw new ModelFileError(output, 'is the input file; use --in-place to replace it (through a temporary file)');
    }
    const staged = new StagedOutput();
    try {
      const out = await staged.create(output);
      // Same dtypes and sizes, so the header (its key order, spacing and __metadata__ included) is kept as it was.
      await writeAll(out, header.headerBytes);
      for (const t of [...header.tensors].sort((a, b) => a.begin - b.begin)) {
        const values = selected.has(t) ? await transform(t, await read(t)) : null;
        if (values === null) await copyRange(handle, header.dataStart + t.begin, t.byteLength, out, file, t.name);
        else {
          const expected = t.dtype === 'F64' ? Float64Array : Float32Array;
          if (!(values instanceof expected) || values.length !== elementCount(t.shape)) throw new Error(`internal: replacement for ${t.name} has the wrong type or length`);
          await writeAll(out, encodeSafetensors(t.dtype, values));
        }
      }
      await staged.commit();
    } catch (error) {
      await staged.abort();
      throw error;
    }
    return { widened: [], files: [output] };
  };

  return {
    format: 'safetensors',
    path: file,
    tensors: header.tensors,
    defaultDim: 0,
    read,
    rewrite,
    close: () => handle.close(),
  };
}

export interface NewTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/**
 * Writes a new safetensors file (examples and tests): tensors in the order given, the header padded with spaces to
 * a multiple of 8 bytes as the reference implementation does.
 */
export function encodeSafetensorsFile(tensors: readonly NewTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const file = new Uint8Array(8 + jsonBytes.length + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(jsonBytes.length), true);
  file.set(jsonBytes, 8);
  let position = 8 + jsonBytes.length;
  for (const t of tensors) {
    file.set(t.data, position);
    position += t.data.byteLength;
  }
  return file;
}
