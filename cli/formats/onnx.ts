// ONNX models: a protobuf ModelProto whose graph's initializers (TensorProto) are the weights, stored in raw_data,
// in typed fields (float_data, double_data, or int32_data holding float16/bfloat16 bit patterns), or in external
// data files (data_location = EXTERNAL, with location, offset and length).
//
// The messages are decoded by onnx-proto, the protobuf definition on npm (protobufjs). What this module adds is the
// walk over the file's top-level fields by offset (protobuf's tag/length framing, wire.ts): it finds the graph and
// its initializers without loading the file, so a 2 GB model with embedded weights needs memory for one tensor, not
// for the file; and it lets normalize replace only the selected tensors' data fields and copy every other byte, so
// fields that this onnx-proto version does not know (it carries onnx.proto of ONNX 1.10) survive unchanged.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import type { FloatArray } from '../../lib';
import { ModelFileError } from '../errors';
import { type ByteRange, type OutputFile, StagedOutput, describeFsError, readValues, sameFile } from '../file-io';
import type { ModelFile, ModelTensor, ReadOptions } from '../model';
import { elementCount } from '../model';
import { CODECS, type FloatStorage, checkReplacement, encodeValues, writeValues } from './codecs';
import { decodeBfloat16, decodeFloat16 } from './half';
import { insideFolder } from './safetensors-index';
import { type Field, WireFile, encodeVarint } from './wire';

/** The part of onnx-proto's generated API used here (its own typings need protobufjs's global Long type). */
interface Int64 {
  toNumber(): number;
}
interface TensorProtoMessage {
  dims: (number | Int64)[];
  dataType: number;
  segment?: object | null;
  name: string;
  floatData: number[];
  int32Data: number[];
  doubleData: number[];
  externalData: { key?: string | null; value?: string | null }[];
  dataLocation: number;
}
interface OnnxProto {
  TensorProto: { decode(bytes: Uint8Array): TensorProtoMessage; encode(message: object): { finish(): Uint8Array } };
  NodeProto: { decode(bytes: Uint8Array): { opType: string; input: string[] } };
}

/** onnx-proto, loaded on the first ONNX model only. */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const loadOnnx = (): OnnxProto => (require('onnx-proto') as { onnx: OnnxProto }).onnx;

/** Field numbers from onnx.proto (ModelProto, GraphProto, TensorProto). */
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_SPARSE_INITIALIZER = 15;
const TENSOR = { floatData: 4, int32Data: 5, stringData: 6, int64Data: 7, rawData: 9, doubleData: 10, uint64Data: 11 } as const;
const DATA_FIELDS = new Set<number>(Object.values(TENSOR));
const EXTERNAL = 1;

/** TensorProto.DataType codes: name and bits per element (0 for STRING). Codes past 16 postdate onnx-proto's copy. */
const DATA_TYPES: Record<number, [string, number]> = {
  1: ['FLOAT', 32],
  2: ['UINT8', 8],
  3: ['INT8', 8],
  4: ['UINT16', 16],
  5: ['INT16', 16],
  6: ['INT32', 32],
  7: ['INT64', 64],
  8: ['STRING', 0],
  9: ['BOOL', 8],
  10: ['FLOAT16', 16],
  11: ['DOUBLE', 64],
  12: ['UINT32', 32],
  13: ['UINT64', 64],
  14: ['COMPLEX64', 64],
  15: ['COMPLEX128', 128],
  16: ['BFLOAT16', 16],
  17: ['FLOAT8E4M3FN', 8],
  18: ['FLOAT8E4M3FNUZ', 8],
  19: ['FLOAT8E5M2', 8],
  20: ['FLOAT8E5M2FNUZ', 8],
  21: ['UINT4', 4],
  22: ['INT4', 4],
  23: ['FLOAT4E2M1', 4],
  24: ['FLOAT8E8M0', 8],
};
const STORAGE: Record<number, FloatStorage> = { 1: 'float32', 11: 'float64', 10: 'float16', 16: 'bfloat16' };
const INTEGER_TYPES = new Set([2, 3, 4, 5, 6, 7, 9, 12, 13, 21, 22]);

interface ExternalData {
  location: string;
  file: string;
  offset: number;
  length: number;
}

export interface OnnxTensor extends ModelTensor {
  dataType: number;
  /** The TensorProto's field in the graph: tag start, value start (after the length) and end. */
  message: Field;
  /** Its top-level fields. */
  fields: Field[];
  /** Where the values are: a raw_data field, typed fields, or an external file. */
  storage:
    { kind: 'raw'; field: Field } | { kind: 'typed'; fields: Field[] } | { kind: 'external'; external: ExternalData } | { kind: 'none' };
}

function bad(file: string, detail: string, tensor?: string): ModelFileError {
  return new ModelFileError(file, detail, tensor);
}

function toNumber(x: number | Int64, what: string, file: string, tensor: string): number {
  const n = typeof x === 'number' ? x : x.toNumber();
  if (!Number.isSafeInteger(n) || n < 0) throw bad(file, `${what} ${String(x)} is not a non-negative integer`, tensor);
  return n;
}

/** Decodes a TensorProto's small fields (everything but the data) with onnx-proto. */
function decodeMeta(bytes: Uint8Array, file: string, where: string) {
  try {
    return loadOnnx().TensorProto.decode(bytes);
  } catch (error) {
    throw bad(file, `invalid protobuf in ${where}: ${(error as Error).message}`);
  }
}

/** Counts the varints of packed int32_data, or the elements of unpacked fields, to check against the dims. */
async function typedCount(wire: WireFile, fields: readonly Field[], dataType: number): Promise<number> {
  let count = 0;
  for (const f of fields) {
    if (f.wire !== 2) {
      count++;
      continue;
    }
    const length = f.end - f.start;
    if (dataType === 1) count += length / 4;
    else if (dataType === 11) count += length / 8;
    else {
      const bytes = await wire.bytes(f.start, length);
      for (const b of bytes) if (b < 0x80) count++;
    }
  }
  return count;
}

async function readTensor(
  wire: WireFile,
  folder: string,
  message: Field,
  externalHandles: Map<string, fs.FileHandle>,
): Promise<OnnxTensor> {
  const file = wire.file;
  const fields = await wire.fields(message.start, message.end, `an initializer at byte ${message.tagStart}`);
  const metaFields = fields.filter((f) => !DATA_FIELDS.has(f.number));
  const meta = decodeMeta(await wire.concat(metaFields), file, `the initializer at byte ${message.tagStart}`);
  const name = meta.name;
  if (!name) throw bad(file, `the initializer at byte ${message.tagStart} has no name`);
  const shape = meta.dims.map((d) => toNumber(d, 'a dim of', file, name));
  const count = elementCount(shape);
  const [typeName, bits] = DATA_TYPES[meta.dataType] ?? [`data_type ${meta.dataType}`, -1];
  if (meta.segment) throw bad(file, 'segmented tensors (TensorProto.segment) are not supported', name);
  const dataFields = fields.filter((f) => DATA_FIELDS.has(f.number));
  const raw = dataFields.filter((f) => f.number === TENSOR.rawData);
  const typedFields = dataFields.filter((f) => f.number !== TENSOR.rawData);
  const expectedBytes = bits > 0 ? Math.ceil((count * bits) / 8) : null;
  let storage: OnnxTensor['storage'];
  let byteLength: number;
  if (meta.dataLocation === EXTERNAL) {
    if (dataFields.length > 0) throw bad(file, 'has data_location EXTERNAL and data in the file as well', name);
    const entries = new Map(meta.externalData.map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location');
    if (!location) throw bad(file, 'has data_location EXTERNAL but no external_data location', name);
    if (!insideFolder(location)) throw bad(file, `external data location '${location}' must be relative, inside the model's folder`, name);
    const externalFile = path.join(folder, location);
    let handle = externalHandles.get(externalFile);
    if (handle === undefined) {
      try {
        handle = await fs.open(externalFile, 'r');
      } catch (error) {
        throw bad(file, `missing or unreadable external data '${location}': ${describeFsError(error)}`, name);
      }
      externalHandles.set(externalFile, handle);
    }
    const size = (await handle.stat()).size;
    const number = (key: string, fallback: number) => {
      const text = entries.get(key);
      if (text === undefined || text === '') return fallback;
      if (!/^\d+$/.test(text)) throw bad(file, `external_data ${key} '${text}' is not a non-negative integer`, name);
      return Number(text);
    };
    const offset = number('offset', 0);
    const length = number('length', Math.max(0, size - offset));
    if (offset + length > size) {
      throw bad(file, `external data past the end of '${location}': bytes ${offset}..${offset + length} of a ${size}-byte file`, name);
    }
    if (expectedBytes !== null && length !== expectedBytes) {
      throw bad(
        file,
        `byte length mismatch: dims [${shape.join(', ')}] of ${typeName} need ${expectedBytes} bytes but its external data has ${length}`,
        name,
      );
    }
    storage = { kind: 'external', external: { location, file: externalFile, offset, length } };
    byteLength = length;
  } else if (raw.length > 0) {
    if (raw.length > 1 || typedFields.length > 0)
      throw bad(file, 'holds its data twice (raw_data with typed fields, or raw_data repeated)', name);
    const length = raw[0].end - raw[0].start;
    if (expectedBytes !== null && length !== expectedBytes) {
      throw bad(
        file,
        `byte length mismatch: dims [${shape.join(', ')}] of ${typeName} need ${expectedBytes} bytes but raw_data holds ${length}`,
        name,
      );
    }
    storage = { kind: 'raw', field: raw[0] };
    byteLength = length;
  } else if (typedFields.length > 0) {
    byteLength = typedFields.reduce((sum, f) => sum + (f.end - f.start), 0);
    storage = { kind: 'typed', fields: typedFields };
    if (STORAGE[meta.dataType] !== undefined) {
      const expectedField = meta.dataType === 1 ? TENSOR.floatData : meta.dataType === 11 ? TENSOR.doubleData : TENSOR.int32Data;
      if (typedFields.some((f) => f.number !== expectedField))
        throw bad(file, `${typeName} data must be in field ${expectedField} of TensorProto`, name);
      const n = await typedCount(wire, typedFields, meta.dataType);
      if (n !== count)
        throw bad(file, `element count mismatch: dims [${shape.join(', ')}] need ${count} elements but its typed data holds ${n}`, name);
    }
  } else {
    if (count > 0 && meta.dataType !== 8) throw bad(file, `holds no data for its ${count} elements`, name);
    storage = { kind: 'none' };
    byteLength = 0;
  }
  const numeric = STORAGE[meta.dataType] !== undefined && count > 0;
  const unsupported =
    !numeric && !INTEGER_TYPES.has(meta.dataType) && meta.dataType !== 8 ? { unsupported: `unsupported dtype ${typeName}` } : {};
  return { name, shape, dtype: typeName, numeric, ...unsupported, byteLength, dataType: meta.dataType, message, fields, storage };
}

/** The typed-field values of a tensor, decoded by onnx-proto from the whole TensorProto. */
async function readTyped(wire: WireFile, t: OnnxTensor): Promise<FloatArray> {
  const message = decodeMeta(await wire.bytes(t.message.start, t.message.end - t.message.start), wire.file, `initializer '${t.name}'`);
  switch (t.dataType) {
    case 1:
      return Float32Array.from(message.floatData);
    case 11:
      return Float64Array.from(message.doubleData);
    default: {
      const bytes = new Uint8Array(Uint16Array.from(message.int32Data).buffer);
      return t.dataType === 10 ? decodeFloat16(bytes) : decodeBfloat16(bytes);
    }
  }
}

/** The bytes of a typed data field holding `values`, encoded by onnx-proto (packed, as protobuf 3 writes it). */
function encodeTyped(t: OnnxTensor, values: FloatArray): Uint8Array {
  const { TensorProto } = loadOnnx();
  if (t.dataType === 1) return TensorProto.encode({ floatData: Array.from(values) }).finish();
  if (t.dataType === 11) return TensorProto.encode({ doubleData: Array.from(values) }).finish();
  const bits = new Uint16Array(encodeValues(STORAGE[t.dataType], values).buffer);
  return TensorProto.encode({ int32Data: Array.from(bits) }).finish();
}

export async function openOnnx(file: string): Promise<ModelFile> {
  const folder = path.dirname(file);
  const wire = await WireFile.open(file);
  const externalHandles = new Map<string, fs.FileHandle>();
  const closeAll = async () => {
    await wire.close();
    for (const h of externalHandles.values()) await h.close().catch(() => undefined);
  };
  let graph: Field;
  let tensors: OnnxTensor[];
  let sparse: number;
  try {
    const top = await wire.fields(0, wire.size, 'the model');
    const graphs = top.filter((f) => f.number === MODEL_GRAPH);
    if (graphs.length !== 1 || graphs[0].wire !== 2)
      throw bad(file, `not an ONNX model: ${graphs.length === 0 ? 'no graph' : 'the graph field is malformed or repeated'}`);
    graph = graphs[0];
    const graphFields = await wire.fields(graph.start, graph.end, 'the graph');
    tensors = [];
    const names = new Set<string>();
    for (const f of graphFields.filter((g) => g.number === GRAPH_INITIALIZER)) {
      if (f.wire !== 2) throw bad(file, `invalid protobuf: the initializer at byte ${f.tagStart} is not a message`);
      const t = await readTensor(wire, folder, f, externalHandles);
      if (names.has(t.name)) throw bad(file, 'two initializers have this name', t.name);
      names.add(t.name);
      tensors.push(t);
    }
    // ConvTranspose weights are (in, out/groups, kh, kw): their rows are dim 1, as PyTorch's spectral_norm uses.
    const { NodeProto } = loadOnnx();
    const byName = new Map(tensors.map((t) => [t.name, t]));
    for (const f of graphFields.filter((g) => g.number === GRAPH_NODE)) {
      const node = NodeProto.decode(await wire.bytes(f.start, f.end - f.start));
      const weight = node.opType === 'ConvTranspose' ? byName.get(node.input[1]) : undefined;
      if (weight !== undefined && weight.shape.length >= 2) weight.defaultDim = 1;
    }
    sparse = graphFields.filter((g) => g.number === GRAPH_SPARSE_INITIALIZER).length;
    checkExternalOverlaps(file, tensors);
  } catch (error) {
    await closeAll();
    if (error instanceof ModelFileError) throw error;
    throw bad(file, `invalid protobuf: ${(error as Error).message}`);
  }

  const read = async (tensor: ModelTensor, options?: ReadOptions): Promise<FloatArray> => {
    const t = tensor as OnnxTensor;
    if (!t.numeric) throw new Error(`internal: tensor ${t.name} is not numeric`);
    const codec = CODECS[STORAGE[t.dataType]];
    const count = elementCount(t.shape);
    if (t.storage.kind === 'raw') {
      const range: ByteRange = { handle: wire.handle, file, position: t.storage.field.start, length: t.byteLength };
      return readValues([range], count, codec, t.name, options);
    }
    if (t.storage.kind === 'external') {
      const e = t.storage.external;
      const range: ByteRange = { handle: externalHandles.get(e.file)!, file: e.file, position: e.offset, length: e.length };
      return readValues([range], count, codec, t.name, options);
    }
    await options?.gate?.(t.byteLength);
    return readTyped(wire, t);
  };

  /** Typed tensors are re-encoded (their length may change), so they come first; then file order, then each external file. */
  const writeOrder = (selected: readonly ModelTensor[]): OnnxTensor[] => {
    const set = new Set(selected);
    const chosen = tensors.filter((t) => set.has(t));
    const typed = chosen.filter((t) => t.storage.kind === 'typed');
    const raw = chosen.filter((t) => t.storage.kind === 'raw');
    const external = chosen.filter((t) => t.storage.kind === 'external');
    const files = [...new Set(external.map((t) => (t.storage as { external: ExternalData }).external.file))];
    const offset = (t: OnnxTensor) => (t.storage as { external: ExternalData }).external.offset;
    return [
      ...typed,
      ...raw,
      ...files.flatMap((f) =>
        external.filter((t) => (t.storage as { external: ExternalData }).external.file === f).sort((a, b) => offset(a) - offset(b)),
      ),
    ];
  };

  const rewrite: ModelFile['rewrite'] = async (output, selected, transform, inPlace) => {
    const order = writeOrder([...selected]);
    const outFolder = path.dirname(output);
    const externals = [...new Set(tensors.flatMap((t) => (t.storage.kind === 'external' ? [t.storage.external] : [])).map((e) => e.file))];
    const externalOut = (f: string) => path.join(outFolder, path.relative(folder, f));
    if (!inPlace) {
      for (const target of [output, ...externals.map(externalOut)]) {
        for (const input of [file, ...externals]) {
          if (await sameFile(target, input))
            throw bad(target, `would overwrite the input ${input}; choose another folder, or use --in-place`);
        }
      }
    }
    const files: string[] = [];
    await StagedOutput.run(async (staged) => {
      let next = 0;
      const take = async (t: OnnxTensor) => {
        if (order[next] !== t) throw new Error(`internal: ${t.name} written out of order`);
        next++;
        const values = await transform(t);
        if (values !== null) checkReplacement(t.name, STORAGE[t.dataType], values, elementCount(t.shape));
        return values;
      };
      // Typed tensors first: their new encodings decide the lengths written before them.
      const reencoded = new Map<OnnxTensor, Uint8Array>();
      for (const t of order.filter((x) => x.storage.kind === 'typed')) {
        const values = await take(t);
        if (values !== null) reencoded.set(t, encodeTyped(t, values));
      }
      const embedded = order.filter((t) => t.storage.kind === 'raw');
      if (embedded.length > 0 || reencoded.size > 0) {
        await writeModel(await staged.create(output), wire, graph, tensors, reencoded, selected, take);
        files.push(output);
      } else if (!inPlace) {
        await (await staged.copy(output, file)).finish();
        files.push(output);
      }
      for (const external of externals) {
        const inFile = order.filter((t) => t.storage.kind === 'external' && t.storage.external.file === external);
        if (inFile.length === 0 && inPlace) continue;
        const out = await staged.copy(externalOut(external), external);
        for (const t of inFile) {
          const values = await take(t);
          const e = (t.storage as { external: ExternalData }).external;
          if (values !== null) await writeValues(STORAGE[t.dataType], values, (bytes, at) => out.writeAt(bytes, e.offset + at));
        }
        files.push(externalOut(external));
      }
      // The external files are renamed into place before the model that points at them.
      return [...files.filter((f) => f !== output), output];
    });
    return { widened: [], files };
  };

  return {
    format: 'onnx',
    path: file,
    file,
    description: [
      'ONNX',
      externalHandles.size > 0 ? `external data in ${externalHandles.size} file${externalHandles.size > 1 ? 's' : ''}` : '',
      sparse > 0 ? `${sparse} sparse initializer(s) not covered` : '',
    ]
      .filter((s) => s !== '')
      .join(', '),
    tensors,
    defaultDim: 0,
    read,
    writeOrder,
    rewrite,
    close: closeAll,
  };
}

/** External data of two initializers must not share bytes: normalize writes each tensor's bytes in place. */
function checkExternalOverlaps(file: string, tensors: readonly OnnxTensor[]): void {
  const external = tensors.flatMap((t) => (t.storage.kind === 'external' && t.byteLength > 0 ? [{ t, e: t.storage.external }] : []));
  external.sort((a, b) => a.e.file.localeCompare(b.e.file) || a.e.offset - b.e.offset);
  for (let i = 1; i < external.length; i++) {
    const [a, b] = [external[i - 1], external[i]];
    if (a.e.file === b.e.file && b.e.offset < a.e.offset + a.e.length) {
      throw bad(
        file,
        `external data bytes ${b.e.offset}..${b.e.offset + b.e.length} of '${b.e.location}' overlap those of '${a.t.name}'`,
        b.t.name,
      );
    }
  }
}

/**
 * Writes the .onnx file: every byte copied, except the selected embedded tensors' data. raw_data keeps its length,
 * so only its value bytes change; a re-encoded typed field may change length, so its TensorProto's length prefix
 * and the graph's are written anew.
 */
async function writeModel(
  out: OutputFile,
  wire: WireFile,
  graph: Field,
  tensors: readonly OnnxTensor[],
  reencoded: ReadonlyMap<OnnxTensor, Uint8Array>,
  selected: ReadonlySet<ModelTensor>,
  take: (t: OnnxTensor) => Promise<FloatArray | null>,
): Promise<void> {
  const file = wire.file;
  /** A re-encoded tensor's body: its non-data fields as they were, with the new data field where the old began. */
  const bodies = new Map<OnnxTensor, { parts: (Field | Uint8Array)[]; length: number }>();
  for (const [t, data] of reencoded) {
    const parts: (Field | Uint8Array)[] = [];
    let placed = false;
    for (const f of t.fields) {
      if (!DATA_FIELDS.has(f.number)) parts.push(f);
      else if (!placed) {
        parts.push(data);
        placed = true;
      }
    }
    const length = parts.reduce((sum, p) => sum + (p instanceof Uint8Array ? p.length : p.end - p.tagStart), 0);
    bodies.set(t, { parts, length });
  }
  let graphLength = graph.end - graph.start;
  for (const [t, body] of bodies) {
    const before = t.message.end - t.message.tagStart;
    graphLength += t.message.tagEnd - t.message.tagStart + encodeVarint(body.length).length + body.length - before;
  }
  await out.copyFrom(wire.handle, 0, graph.tagEnd, file);
  await out.write(encodeVarint(graphLength));
  let position = graph.start;
  for (const t of tensors) {
    const body = bodies.get(t);
    const raw = selected.has(t) && t.storage.kind === 'raw' ? t.storage.field : null;
    if (body === undefined && raw === null) continue;
    if (body !== undefined) {
      await out.copyFrom(wire.handle, position, t.message.tagEnd - position, file);
      await out.write(encodeVarint(body.length));
      for (const p of body.parts) {
        if (p instanceof Uint8Array) await out.write(p);
        else await out.copyFrom(wire.handle, p.tagStart, p.end - p.tagStart, file, t.name);
      }
      position = t.message.end;
    } else if (raw !== null) {
      await out.copyFrom(wire.handle, position, raw.start - position, file);
      const values = await take(t);
      if (values === null) await out.copyFrom(wire.handle, raw.start, raw.end - raw.start, file, t.name);
      else await writeValues(STORAGE[t.dataType], values, (bytes) => out.write(bytes));
      position = raw.end;
    }
  }
  await out.copyFrom(wire.handle, position, wire.size - position, file);
}
