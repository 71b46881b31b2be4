// safetensors: an 8-byte little-endian header length N, N bytes of JSON, then the tensors' bytes. The header maps
// each tensor name to { dtype, shape, data_offsets: [begin, end] } (relative to the end of the header), with an
// optional "__metadata__" map of strings. No maintained npm package reads it by offset from a file handle, so this
// module does, and validates the header as strictly as the reference implementation: known dtypes, sizes that match
// the shapes, and offsets that tile the data exactly, with no gap, overlap or trailing byte.
import type * as fs from 'node:fs/promises';

import type { FloatArray } from '../../lib';
import { ModelFileError, firstLine } from '../errors';
import { StagedOutput, openForReading, readExactly, readValues, sameFile } from '../file-io';
import { type ModelFile, type ModelTensor, type ReadOptions, type Transform, elementCount } from '../model';
import { CODECS, type FloatStorage, checkReplacement, writeValues } from './codecs';

/** Bits per element of every dtype the format defines. */
const DTYPE_BITS: Record<string, number> = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  I64: 64,
  U64: 64,
  F64: 64,
  C64: 64,
};

/** The dtypes the CLI computes on; all others pass through untouched. */
const NUMERIC = new Set(['F16', 'BF16', 'F32', 'F64']);

/** Floating-point dtypes the CLI does not compute on: a selected weight of one of these is a skipped row. */
const UNSUPPORTED_FLOATS = new Set(['F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

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
    throw new ModelFileError(
      file,
      `header length ${length} is absurd (the format's limit is ${MAX_HEADER_BYTES} bytes): not a safetensors file, or a corrupt one`,
    );
  }
  const n = Number(length);
  if (8 + n > fileSize)
    throw new ModelFileError(file, `truncated: the header claims ${n} bytes but the file has only ${fileSize - 8} after the length`);
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
  const unsupported = UNSUPPORTED_FLOATS.has(dtype) ? { unsupported: `unsupported dtype ${dtype}` } : {};
  return {
    name,
    shape: shape.slice(),
    dtype,
    numeric: NUMERIC.has(dtype) && count > 0,
    ...unsupported,
    byteLength: end - begin,
    begin,
    end,
  };
}

/** The tensors must cover the data exactly, in some order: no overlap, no gap, nothing past the end or after it. */
function checkTiling(file: string, tensors: readonly SafetensorsTensor[], dataSize: number): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let position = 0;
  let previous: SafetensorsTensor | null = null;
  for (const t of sorted) {
    if (t.end > dataSize) {
      throw new ModelFileError(
        file,
        `data_offsets [${t.begin}, ${t.end}] out of range: the data section has ${dataSize} bytes (truncated file?)`,
        t.name,
      );
    }
    if (t.begin < position) {
      throw new ModelFileError(
        file,
        `data_offsets [${t.begin}, ${t.end}] overlap tensor '${previous?.name}' [${previous?.begin}, ${previous?.end}]`,
        t.name,
      );
    }
    if (t.begin > position)
      throw new ModelFileError(file, `data_offsets [${t.begin}, ${t.end}] leave a gap of ${t.begin - position} bytes before them`, t.name);
    position = t.end;
    previous = t;
  }
  if (position !== dataSize) throw new ModelFileError(file, `${dataSize - position} bytes after the last tensor belong to none`);
}

const STORAGE: Record<string, FloatStorage> = { F32: 'float32', F64: 'float64', F16: 'float16', BF16: 'bfloat16' };

/** One open safetensors file: its handle and validated header. A sharded checkpoint is several of these. */
export interface SafetensorsShard {
  file: string;
  handle: fs.FileHandle;
  header: SafetensorsHeader;
}

export async function openSafetensorsShard(file: string, what?: string): Promise<SafetensorsShard> {
  const handle = await openForReading(file, what);
  try {
    const size = (await handle.stat()).size;
    return { file, handle, header: await readSafetensorsHeader(handle, file, size) };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export function readShardTensor(shard: SafetensorsShard, tensor: ModelTensor, options?: ReadOptions): Promise<FloatArray> {
  const t = tensor as SafetensorsTensor;
  if (!t.numeric) throw new Error(`internal: tensor ${t.name} is not numeric`);
  const range = { handle: shard.handle, file: shard.file, position: shard.header.dataStart + t.begin, length: t.byteLength };
  return readValues([range], elementCount(t.shape), CODECS[STORAGE[t.dtype]], t.name, options);
}

/** The selected tensors of a shard in the order its rewrite writes them: by offset. */
export function shardWriteOrder(shard: SafetensorsShard, selected: ReadonlySet<ModelTensor>): SafetensorsTensor[] {
  return byOffset(shard.header.tensors).filter((t) => selected.has(t));
}

function byOffset(tensors: readonly SafetensorsTensor[]): SafetensorsTensor[] {
  return [...tensors].sort((a, b) => a.begin - b.begin);
}

/**
 * Writes a shard to `output` within `staged`: the header exactly as it was (same dtypes and sizes, so its key order,
 * spacing and __metadata__ are kept), then each tensor by offset, through `transform` if selected, else copied.
 */
export async function writeShard(
  staged: StagedOutput,
  output: string,
  shard: SafetensorsShard,
  selected: ReadonlySet<ModelTensor>,
  transform: Transform,
): Promise<void> {
  const out = await staged.create(output);
  await out.write(shard.header.headerBytes);
  for (const t of byOffset(shard.header.tensors)) {
    const values = selected.has(t) ? await transform(t) : null;
    if (values === null) {
      await out.copyFrom(shard.handle, shard.header.dataStart + t.begin, t.byteLength, shard.file, t.name);
    } else {
      const storage = STORAGE[t.dtype];
      checkReplacement(t.name, storage, values, elementCount(t.shape));
      await writeValues(storage, values, (bytes) => out.write(bytes));
    }
  }
}

export async function openSafetensors(file: string): Promise<ModelFile> {
  const shard = await openSafetensorsShard(file);
  const rewrite: ModelFile['rewrite'] = async (output, selected, transform, inPlace) => {
    if (!inPlace && (await sameFile(output, file))) {
      throw new ModelFileError(output, 'is the input file; use --in-place to replace it (through a temporary file)');
    }
    await StagedOutput.run((staged) => writeShard(staged, output, shard, selected, transform));
    return { widened: [], files: [output] };
  };

  return {
    format: 'safetensors',
    path: file,
    file,
    description: 'safetensors',
    tensors: shard.header.tensors,
    defaultDim: 0,
    read: (tensor, options) => readShardTensor(shard, tensor, options),
    writeOrder: (selected) => shardWriteOrder(shard, new Set(selected)),
    rewrite,
    close: () => shard.handle.close(),
  };
}

export interface NewTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A safetensors file's first bytes: the header's length, then its JSON padded with spaces to a multiple of 8 bytes. */
export function encodeSafetensorsHeader(header: Record<string, unknown>): Uint8Array {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const bytes = new Uint8Array(8 + Buffer.byteLength(json));
  new DataView(bytes.buffer).setBigUint64(0, BigInt(bytes.length - 8), true);
  Buffer.from(bytes.buffer).write(json, 8, 'utf8');
  return bytes;
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
  const head = encodeSafetensorsHeader(header);
  const file = new Uint8Array(head.length + offset);
  file.set(head);
  let position = head.length;
  for (const t of tensors) {
    file.set(t.data, position);
    position += t.data.byteLength;
  }
  return file;
}
