// ONNX models for the CLI tests, encoded with onnx-proto: a small valid graph (Conv → ConvTranspose → Flatten →
// MatMul) whose initializers use every storage the CLI reads (raw_data, float_data, double_data, int32_data holding
// float16 and bfloat16, external data files at an offset), plus a bias, an int64 tensor and metadata that must
// survive; and the means to damage it.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from '../../cli/formats/half';
import type { FloatArray } from '../../lib';
import { gaussian, product } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const onnx: any = require('onnx-proto').onnx;

export const DataType = { FLOAT: 1, INT64: 7, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16, FLOAT8E4M3FN: 17 } as const;

export type Storage = 'raw' | 'float_data' | 'double_data' | 'int32_data' | 'external';

export interface OnnxWeight {
  name: string;
  shape: number[];
  dataType: number;
  storage: Storage;
  /** The values as stored (after rounding to the dtype). */
  values: FloatArray;
  /** For external storage: the file and offset. */
  location?: string;
  offset?: number;
}

function draw(shape: number[], dataType: number, scale = 1): { values: FloatArray; bytes: Uint8Array } {
  const n = product(shape);
  if (dataType === DataType.DOUBLE) {
    const values = Float64Array.from({ length: n }, () => gaussian() * scale);
    return { values, bytes: new Uint8Array(values.buffer) };
  }
  const f32 = Float32Array.from({ length: n }, () => gaussian() * scale);
  if (dataType === DataType.FLOAT) return { values: f32, bytes: new Uint8Array(f32.buffer) };
  if (dataType === DataType.FLOAT16) {
    const bytes = encodeFloat16(f32);
    return { values: decodeFloat16(bytes), bytes };
  }
  const bytes = encodeBfloat16(f32);
  return { values: decodeBfloat16(bytes), bytes };
}

/** A TensorProto (as onnx-proto's plain object) holding `bytes` in the given storage. */
function tensorProto(w: OnnxWeight, bytes: Uint8Array, folder: string): any {
  const t: any = { name: w.name, dims: w.shape, dataType: w.dataType, docString: `weight ${w.name}` };
  switch (w.storage) {
    case 'raw':
      t.rawData = bytes;
      break;
    case 'float_data':
      t.floatData = Array.from(w.values);
      break;
    case 'double_data':
      t.doubleData = Array.from(w.values);
      break;
    case 'int32_data':
      t.int32Data = Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      break;
    case 'external': {
      const file = path.join(folder, w.location!);
      const existing = fs.existsSync(file) ? fs.readFileSync(file) : Buffer.alloc(0);
      const content = Buffer.alloc(Math.max(existing.length, w.offset! + bytes.length + 16), 0x5a);
      existing.copy(content);
      Buffer.from(bytes).copy(content, w.offset!);
      fs.writeFileSync(file, content);
      t.dataLocation = 1;
      t.externalData = [
        { key: 'location', value: w.location },
        { key: 'offset', value: String(w.offset) },
        { key: 'length', value: String(bytes.length) },
      ];
      break;
    }
  }
  return t;
}

const valueInfo = (name: string, shape: number[]) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
});

export interface OnnxModel {
  file: string;
  weights: OnnxWeight[];
}

/**
 * Writes model.onnx (and weights.bin for the external tensors) into `folder`. Graph: X[1,3,8,8] → Conv(conv.weight,
 * conv.bias) → ConvTranspose(deconv.weight) → Flatten → MatMul(fc.weight) → Y[1,5]; the other initializers are unused,
 * which ONNX allows.
 */
export function writeOnnx(folder: string, options: { embedOnly?: boolean } = {}): OnnxModel {
  const specs: Omit<OnnxWeight, 'values'>[] = [
    { name: 'conv.weight', shape: [4, 3, 3, 3], dataType: DataType.FLOAT, storage: 'raw' },
    { name: 'conv.bias', shape: [4], dataType: DataType.FLOAT, storage: 'raw' },
    { name: 'deconv.weight', shape: [4, 2, 2, 2], dataType: DataType.FLOAT, storage: 'float_data' },
    {
      name: 'fc.weight',
      shape: [512, 5],
      dataType: DataType.FLOAT,
      storage: options.embedOnly ? 'raw' : 'external',
      location: 'weights.bin',
      offset: 64,
    },
    { name: 'half.weight', shape: [6, 7], dataType: DataType.FLOAT16, storage: 'raw' },
    { name: 'half_typed.weight', shape: [5, 3], dataType: DataType.FLOAT16, storage: 'int32_data' },
    { name: 'bf.weight', shape: [3, 11], dataType: DataType.BFLOAT16, storage: 'int32_data' },
    { name: 'double.weight', shape: [7, 2, 2], dataType: DataType.DOUBLE, storage: 'double_data' },
    {
      name: 'half_ext.weight',
      shape: [9, 4],
      dataType: DataType.FLOAT16,
      storage: options.embedOnly ? 'raw' : 'external',
      location: 'weights.bin',
      offset: 64 + 512 * 5 * 4 + 8,
    },
  ];
  const weights: OnnxWeight[] = [];
  const initializers: any[] = [];
  fs.rmSync(path.join(folder, 'weights.bin'), { force: true });
  for (const spec of specs) {
    const { values, bytes } = draw(spec.shape, spec.dataType, spec.name === 'double.weight' ? 3 : 0.5);
    const w = { ...spec, values };
    weights.push(w);
    initializers.push(tensorProto(w, bytes, folder));
  }
  // An int64 tensor of rank 2, never computed on, and one more after it, to check positions past it.
  initializers.splice(2, 0, { name: 'steps', dims: [2, 3], dataType: DataType.INT64, int64Data: [1, 2, 3, 4, 5, 6] });
  const graph = {
    name: 'test-graph',
    node: [
      {
        opType: 'Conv',
        input: ['X', 'conv.weight', 'conv.bias'],
        output: ['h1'],
        name: 'conv',
        attribute: [
          { name: 'kernel_shape', type: 7, ints: [3, 3] },
          { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
        ],
      },
      {
        opType: 'ConvTranspose',
        input: ['h1', 'deconv.weight'],
        output: ['h2'],
        name: 'deconv',
        attribute: [
          { name: 'kernel_shape', type: 7, ints: [2, 2] },
          { name: 'strides', type: 7, ints: [2, 2] },
        ],
      },
      { opType: 'Flatten', input: ['h2'], output: ['h3'], name: 'flatten', attribute: [{ name: 'axis', type: 2, i: 1 }] },
      { opType: 'MatMul', input: ['h3', 'fc.weight'], output: ['Y'], name: 'fc' },
    ],
    initializer: initializers,
    input: [valueInfo('X', [1, 3, 8, 8])],
    output: [valueInfo('Y', [1, 5])],
    docString: 'a graph for the spectral-norm CLI tests',
  };
  const model = {
    irVersion: 8,
    producerName: 'spectral-norm tests',
    producerVersion: '1',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
    metadataProps: [{ key: 'kept', value: 'byte for byte' }],
  };
  const file = path.join(folder, 'model.onnx');
  fs.writeFileSync(file, onnx.ModelProto.encode(onnx.ModelProto.fromObject(model)).finish());
  return { file, weights };
}

/** The model decoded by onnx-proto, as a plain object, for comparisons. */
export function decodeOnnx(file: string): any {
  return onnx.ModelProto.toObject(onnx.ModelProto.decode(fs.readFileSync(file)), { longs: Number, bytes: Array, defaults: false });
}
