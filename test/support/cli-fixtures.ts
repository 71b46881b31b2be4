// Model files for the CLI tests, written into a fresh temporary folder: safetensors of every dtype, TF.js models
// with plain, uint8-, uint16- and float16-stored weights across several shards, and ways to damage them.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { ReportOptions } from '../../cli/commands/report';
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from '../../cli/formats/half';
import { type NewTensor, encodeSafetensorsFile } from '../../cli/formats/safetensors';
import { type FloatArray } from '../../lib';
import { gaussian, product, random } from './helpers';

/** `report`'s options as the CLI's defaults give them, but for a tight tolerance; `overrides` changes any. */
export function reportOptions(overrides: Partial<ReportOptions> = {}): ReportOptions {
  return {
    include: [],
    exclude: [],
    dims: [],
    backend: 'auto',
    tolerance: 1e-9,
    maxIterations: 5000,
    json: false,
    exact: false,
    ...overrides,
  };
}

export function temporaryFolder(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sn-cli-'));
}

export type SafetensorsDtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I32';

/** Fresh Gaussian values encoded in `dtype`, plus the values exactly as stored (decoded back). */
export function tensorOf(
  name: string,
  dtype: SafetensorsDtype,
  shape: number[],
  scale = 1,
): NewTensor & { values: FloatArray | Int32Array } {
  const n = product(shape);
  if (dtype === 'I32') {
    const values = Int32Array.from({ length: n }, (_, i) => i * 7 - 100);
    return { name, dtype, shape, data: new Uint8Array(values.buffer), values };
  }
  if (dtype === 'F64') {
    const values = Float64Array.from({ length: n }, () => gaussian() * scale);
    return { name, dtype, shape, data: new Uint8Array(values.buffer), values };
  }
  const f32 = Float32Array.from({ length: n }, () => gaussian() * scale);
  if (dtype === 'F32') return { name, dtype, shape, data: new Uint8Array(f32.buffer), values: f32 };
  const data = dtype === 'F16' ? encodeFloat16(f32) : encodeBfloat16(f32);
  return { name, dtype, shape, data, values: dtype === 'F16' ? decodeFloat16(data) : decodeBfloat16(data) };
}

/** A model with a tensor of every computed dtype, awkward shapes, a bias, an int tensor and metadata. */
export function mixedTensors(): (NewTensor & { values: FloatArray | Int32Array })[] {
  return [
    tensorOf('embed.weight', 'F32', [37, 8]),
    tensorOf('conv.weight', 'F32', [13, 3, 3, 3], 0.5),
    tensorOf('conv.bias', 'F32', [13]),
    tensorOf('deconv.weight', 'F16', [5, 7, 2, 2]),
    tensorOf('fc1.weight', 'BF16', [1, 33]),
    tensorOf('fc2.weight', 'F64', [29, 1], 3),
    tensorOf('steps', 'I32', [4, 2]),
    tensorOf('head.weight', 'F32', [7, 31], 2),
  ];
}

export const METADATA = { format: 'pt', note: 'kept byte for byte' };

export function writeSafetensors(
  folder: string,
  name: string,
  tensors: readonly NewTensor[],
  metadata: Record<string, string> | undefined = METADATA,
): string {
  const file = path.join(folder, name);
  fs.writeFileSync(file, encodeSafetensorsFile(tensors, metadata));
  return file;
}

/** A raw safetensors file from a header object (any JSON, valid or not) and a data section. */
export function rawSafetensors(folder: string, name: string, header: unknown, data: Uint8Array, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const bytes = Buffer.alloc(8 + json.length + data.length);
  bytes.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(bytes, 8);
  Buffer.from(data).copy(bytes, 8 + json.length);
  const file = path.join(folder, name);
  fs.writeFileSync(file, bytes);
  return file;
}

export interface TfjsWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: 'uint8' | 'uint16' | 'float16';
}

/**
 * A TF.js model (model.json, or a standalone manifest) whose single group is split into shards of `shardSize`
 * bytes, so weights straddle shard boundaries. Returns the dequantized values of each weight as stored.
 */
export function writeTfjs(
  folder: string,
  weights: readonly TfjsWeight[],
  options: { manifestOnly?: boolean; shardSize?: number; scale?: number } = {},
): { file: string; values: Map<string, FloatArray | Int32Array> } {
  const chunks: Uint8Array[] = [];
  const entries: Record<string, unknown>[] = [];
  const values = new Map<string, FloatArray | Int32Array>();
  for (const w of weights) {
    const n = product(w.shape);
    const entry: Record<string, unknown> = { name: w.name, shape: w.shape, dtype: w.dtype };
    if (w.dtype === 'int32') {
      const v = Int32Array.from({ length: n }, (_, i) => i - 3);
      chunks.push(new Uint8Array(v.buffer));
      values.set(w.name, v);
    } else if (w.quantization === 'uint8' || w.quantization === 'uint16') {
      const levels = w.quantization === 'uint8' ? 256 : 65536;
      const q = Array.from({ length: n }, () => Math.floor(random() * levels));
      const scale = (options.scale ?? 1) * (w.quantization === 'uint8' ? 0.01 : 0.0001);
      const min = -scale * (levels / 2);
      entry.quantization = { dtype: w.quantization, scale, min };
      chunks.push(w.quantization === 'uint8' ? Uint8Array.from(q) : new Uint8Array(Uint16Array.from(q).buffer));
      values.set(
        w.name,
        Float32Array.from(q, (x) => x * scale + min),
      );
    } else if (w.quantization === 'float16') {
      const data = encodeFloat16(Float32Array.from({ length: n }, () => gaussian() * (options.scale ?? 1)));
      entry.quantization = { dtype: 'float16' };
      chunks.push(data);
      values.set(w.name, decodeFloat16(data));
    } else {
      const v = Float32Array.from({ length: n }, () => gaussian() * (options.scale ?? 1));
      chunks.push(new Uint8Array(v.buffer));
      values.set(w.name, v);
    }
    entries.push(entry);
  }
  const all = Buffer.concat(chunks);
  const shardSize = options.shardSize ?? 1000;
  const paths: string[] = [];
  for (let start = 0, i = 1; start < all.length || paths.length === 0; start += shardSize, i++) {
    const shard = `group1-shard${i}.bin`;
    fs.writeFileSync(path.join(folder, shard), all.subarray(start, start + shardSize));
    paths.push(shard);
  }
  const manifest = [{ paths, weights: entries }];
  const file = path.join(folder, options.manifestOnly ? 'model-weights_manifest.json' : 'model.json');
  const json = options.manifestOnly
    ? manifest
    : {
        format: 'layers-model',
        generatedBy: 'test',
        convertedBy: null,
        modelTopology: { class_name: 'Sequential' },
        weightsManifest: manifest,
      };
  fs.writeFileSync(file, JSON.stringify(json));
  return { file, values };
}

/** Every file in a folder, for checking that nothing (no temporary file) was left behind. */
export function listing(folder: string): string[] {
  return fs.readdirSync(folder).sort();
}
