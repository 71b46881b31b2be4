// TensorFlow.js weights: a model.json whose "weightsManifest" lists weight groups, or a standalone
// *weights_manifest.json holding that list. Each group is { paths: shard files, weights: [{ name, shape, dtype,
// quantization? }] }; its weights are stored back to back across the concatenation of its shards. tfjs-converter
// writes this format, but no maintained package reads it from files without loading whole shards through TF.js, so
// this module does, and validates every entry, the shard paths and the byte count.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import type { FloatArray } from '../../lib';
import { ModelFileError, firstLine } from '../errors';
import { type ByteRange, type ElementCodec, type OutputFile, StagedOutput, describeFsError, readValues, sameFile } from '../file-io';
import { type ModelFile, type ModelTensor, type ReadOptions, elementCount } from '../model';
import { CODECS, checkReplacement } from './codecs';

/** Bytes per element of each weight dtype. 'string' weights have no fixed size and are not supported. */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

interface Quantization {
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
}

export interface TfjsTensor extends ModelTensor {
  group: number;
  /** Byte offset within the concatenation of its group's shards. */
  offset: number;
  /** The manifest's own dtype ('float32', 'int32', ...), before quantization. */
  baseDtype: string;
  quantization: Quantization | null;
  /** Where it sits in the manifest, for the rewrite: groups[group].weights[index]. */
  index: number;
}

interface Shard {
  relative: string;
  file: string;
  size: number;
  handle: fs.FileHandle;
}

interface Group {
  shards: Shard[];
  /** Byte offset of each shard within the group. */
  starts: number[];
  byteLength: number;
}

type Manifest = { paths: string[]; weights: Record<string, unknown>[] }[];

function isNonNegativeInteger(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** The manifest list inside a parsed model.json or standalone manifest, validated. */
export function checkManifest(file: string, parsed: unknown): { manifest: Manifest; isModelJson: boolean } {
  let manifest: unknown;
  let isModelJson = false;
  if (Array.isArray(parsed)) {
    manifest = parsed;
  } else if (parsed !== null && typeof parsed === 'object' && 'weightsManifest' in parsed) {
    manifest = (parsed as { weightsManifest: unknown }).weightsManifest;
    isModelJson = true;
  } else {
    throw new ModelFileError(file, 'not a TensorFlow.js model: expected a model.json with "weightsManifest" or a weights manifest array');
  }
  if (!Array.isArray(manifest)) throw new ModelFileError(file, 'invalid manifest: weightsManifest must be an array of groups');
  const names = new Set<string>();
  const shardPaths = new Set<string>();
  manifest.forEach((group: unknown, g) => {
    if (group === null || typeof group !== 'object') throw new ModelFileError(file, `invalid manifest: group ${g} is not an object`);
    const { paths, weights } = group as Record<string, unknown>;
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p.length > 0)) {
      throw new ModelFileError(file, `invalid manifest: group ${g} needs "paths", a non-empty array of file names`);
    }
    for (const p of paths as string[]) {
      // Shards are written beside the output manifest under the same names: none may lead outside its folder.
      if (path.isAbsolute(p) || p.split(/[\\/]/).includes('..') || /^[a-z]+:/i.test(p)) {
        throw new ModelFileError(file, `invalid manifest: shard path '${p}' must be relative, inside the model's folder`);
      }
      if (shardPaths.has(p)) throw new ModelFileError(file, `invalid manifest: shard path '${p}' is listed twice`);
      shardPaths.add(p);
    }
    if (!Array.isArray(weights)) throw new ModelFileError(file, `invalid manifest: group ${g} needs "weights", an array`);
    for (const w of weights) {
      const name = w !== null && typeof w === 'object' && typeof w.name === 'string' ? w.name : undefined;
      if (name === undefined) throw new ModelFileError(file, `invalid manifest: a weight of group ${g} has no name`);
      if (names.has(name)) throw new ModelFileError(file, 'invalid manifest: the name appears twice', name);
      names.add(name);
      checkWeightEntry(file, name, w);
    }
  });
  return { manifest: manifest as Manifest, isModelJson };
}

function checkWeightEntry(file: string, name: string, w: Record<string, unknown>): void {
  const bad = (detail: string) => new ModelFileError(file, `invalid manifest: ${detail}`, name);
  if (!Array.isArray(w.shape) || !w.shape.every(isNonNegativeInteger)) throw bad('shape must be an array of non-negative integers');
  if (!Number.isSafeInteger(elementCount(w.shape as number[]) * 8)) throw bad('shape has too many elements');
  if (typeof w.dtype !== 'string' || !(w.dtype in DTYPE_BYTES)) {
    throw new ModelFileError(file, `unknown dtype ${JSON.stringify(w.dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`, name);
  }
  if (w.quantization === undefined) return;
  const q = w.quantization as Record<string, unknown>;
  if (q === null || typeof q !== 'object') throw bad('quantization must be an object');
  if (typeof q.dtype !== 'string' || !(q.dtype in QUANTIZED_BYTES)) {
    throw new ModelFileError(file, `unknown quantization dtype ${JSON.stringify(q.dtype)} (supported: uint8, uint16, float16)`, name);
  }
  if (q.dtype === 'float16') {
    if (w.dtype !== 'float32') throw bad('float16 quantization applies to float32 weights only');
  } else if (!(typeof q.scale === 'number' && Number.isFinite(q.scale) && typeof q.min === 'number' && Number.isFinite(q.min))) {
    throw bad(`${q.dtype} quantization needs finite "scale" and "min"`);
  }
}

function tensorsOf(manifest: Manifest): TfjsTensor[] {
  const tensors: TfjsTensor[] = [];
  manifest.forEach((group, g) => {
    let offset = 0;
    group.weights.forEach((w, index) => {
      const shape = (w.shape as number[]).slice();
      const baseDtype = w.dtype as string;
      const quantization = (w.quantization as Quantization | undefined) ?? null;
      const count = elementCount(shape);
      const byteLength = count * (quantization ? QUANTIZED_BYTES[quantization.dtype] : DTYPE_BYTES[baseDtype]);
      const dtype = quantization ? `${baseDtype} (${quantization.dtype}-quantized)` : baseDtype;
      const numeric = baseDtype === 'float32' && count > 0;
      tensors.push({ name: w.name as string, shape, dtype, numeric, byteLength, group: g, offset, baseDtype, quantization, index });
      offset += byteLength;
    });
  });
  return tensors;
}

async function openGroups(file: string, manifest: Manifest, tensors: readonly TfjsTensor[]): Promise<Group[]> {
  const directory = path.dirname(file);
  const groups: Group[] = [];
  try {
    for (let g = 0; g < manifest.length; g++) {
      const shards: Shard[] = [];
      const starts: number[] = [];
      let byteLength = 0;
      groups.push({ shards, starts, byteLength });
      for (const relative of manifest[g].paths) {
        const shardFile = path.join(directory, relative);
        let handle: fs.FileHandle;
        try {
          handle = await fs.open(shardFile, 'r');
        } catch (error) {
          throw new ModelFileError(file, `missing or unreadable shard '${relative}': ${describeFsError(error)}`);
        }
        const size = (await handle.stat()).size;
        shards.push({ relative, file: shardFile, size, handle });
        starts.push(byteLength);
        byteLength += size;
      }
      groups[g].byteLength = byteLength;
      const inGroup = tensors.filter((t) => t.group === g);
      const needed = inGroup.reduce((sum, t) => sum + t.byteLength, 0);
      if (needed !== byteLength) {
        const last = inGroup.find((t) => t.offset + t.byteLength > byteLength);
        const detail = needed > byteLength ? 'truncated shard, or a shape/size mismatch' : 'a shape/size mismatch';
        throw new ModelFileError(
          file,
          `group ${g}: the weights need ${needed} bytes but its shards (${manifest[g].paths.join(', ')}) hold ${byteLength}: ${detail}`,
          last?.name,
        );
      }
    }
  } catch (error) {
    await closeGroups(groups);
    throw error;
  }
  return groups;
}

async function closeGroups(groups: readonly Group[]): Promise<void> {
  for (const g of groups) for (const s of g.shards) await s.handle.close().catch(() => undefined);
}

/** The file ranges holding `length` bytes at `offset` of a group, across shard boundaries. */
function groupRanges(group: Group, offset: number, length: number): ByteRange[] {
  const ranges: ByteRange[] = [];
  for (let s = 0, done = 0; s < group.shards.length && done < length; s++) {
    const shard = group.shards[s];
    const from = offset + done - group.starts[s];
    if (from < 0 || from >= shard.size) continue;
    const take = Math.min(shard.size - from, length - done);
    ranges.push({ handle: shard.handle, file: shard.file, position: from, length: take });
    done += take;
  }
  return ranges;
}

/** How a float32 weight's stored elements become float32 values, dequantized as tfjs does: value = q·scale + min. */
export function tfjsCodec(q: Quantization | null): ElementCodec {
  if (q === null) return CODECS.float32;
  if (q.dtype === 'float16') return CODECS.float16;
  const scale = q.scale as number;
  const min = q.min as number;
  const bytes = q.dtype === 'uint8' ? 1 : 2;
  const decode = (src: Uint8Array, dst: FloatArray, at: number) => {
    const stored = bytes === 1 ? src : new Uint16Array(src.buffer, src.byteOffset, src.byteLength / 2);
    for (let i = 0; i < stored.length; i++) dst[at + i] = stored[i] * scale + min;
  };
  return { bytes, wide: 'float32', decode };
}

/** A JSON model file's text and parsed value; a missing file or invalid JSON is a ModelFileError. */
export async function readJson(file: string): Promise<{ text: string; parsed: unknown }> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new ModelFileError(file, `cannot open: ${describeFsError(error)}`);
  }
  try {
    return { text, parsed: JSON.parse(text) };
  } catch (error) {
    throw new ModelFileError(file, `invalid JSON: ${firstLine(error)}`);
  }
}

export async function openTfjs(file: string, json?: { text: string; parsed: unknown }): Promise<ModelFile> {
  const { text, parsed } = json ?? (await readJson(file));
  const { manifest, isModelJson } = checkManifest(file, parsed);
  const tensors = tensorsOf(manifest);
  const groups = await openGroups(file, manifest, tensors);
  return tfjsModel(file, text, isModelJson, tensors, groups);
}

function tfjsModel(file: string, text: string, isModelJson: boolean, tensors: TfjsTensor[], groups: Group[]): ModelFile {
  const manifestOf = (json: unknown): Manifest =>
    isModelJson ? (json as { weightsManifest: Manifest }).weightsManifest : (json as Manifest);
  const rangesOf = (t: TfjsTensor) => groupRanges(groups[t.group], t.offset, t.byteLength);

  const read = async (tensor: ModelTensor, options?: ReadOptions): Promise<FloatArray> => {
    const t = tensor as TfjsTensor;
    if (!t.numeric) throw new Error(`internal: tensor ${t.name} is not numeric`);
    return readValues(rangesOf(t), elementCount(t.shape), tfjsCodec(t.quantization), t.name, options);
  };

  const rewrite: ModelFile['rewrite'] = async (output, selected, transform, inPlace) => {
    const outDir = path.dirname(output);
    const targets = [output, ...groups.flatMap((g) => g.shards.map((s) => path.join(outDir, s.relative)))];
    if (!inPlace) {
      const inputs = [file, ...groups.flatMap((g) => g.shards.map((s) => s.file))];
      for (const target of targets) {
        for (const input of inputs) {
          if (await sameFile(target, input)) {
            throw new ModelFileError(
              target,
              `would overwrite the input${input === file ? '' : ` shard ${input}`}; choose another folder, or use --in-place`,
            );
          }
        }
      }
    }
    const widened: string[] = [];
    await StagedOutput.run(async (staged) => {
      for (let g = 0; g < groups.length; g++) {
        const writer = new ShardWriter(groups[g], outDir, staged);
        for (const t of tensors.filter((x) => x.group === g)) {
          const values = selected.has(t) ? await transform(t) : null;
          if (values === null) {
            for (const r of rangesOf(t)) await writer.copy(r, t.name);
          } else {
            checkReplacement(t.name, 'float32', values, elementCount(t.shape));
            // A changed weight is written as plain float32: re-quantizing would undo the normalization's precision.
            await writer.write(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
            if (t.quantization) widened.push(t.name);
          }
        }
        await writer.finish();
      }
      let json = text;
      if (widened.length > 0) {
        const copy = JSON.parse(text);
        for (const name of widened) {
          const t = tensors.find((x) => x.name === name) as TfjsTensor;
          delete manifestOf(copy)[t.group].weights[t.index].quantization;
        }
        json = JSON.stringify(copy);
      }
      await (await staged.create(output)).write(Buffer.from(json, 'utf8'));
      // Shards first, the manifest last (commit keeps the order of creation), so the manifest never points at shards
      // that are not yet in place.
    });
    return { widened, files: targets };
  };

  return {
    format: 'tfjs',
    path: file,
    file,
    description: `TensorFlow.js, ${groups.reduce((n, g) => n + g.shards.length, 0)} shard file(s)`,
    tensors,
    defaultDim: -1,
    read,
    writeOrder: (selected) => tensors.filter((t) => selected.includes(t)),
    rewrite,
    close: () => closeGroups(groups),
  };
}

/**
 * Writes a group's new bytes into shards with the original names and sizes; the last shard takes whatever the
 * group grew by (dequantized weights). Unchanged groups come out byte-identical, shard for shard.
 */
class ShardWriter {
  private shard = 0;
  private written = 0;
  private out: OutputFile | null = null;

  constructor(
    private readonly group: Group,
    private readonly outDir: string,
    private readonly staged: StagedOutput,
  ) {}

  /** Writes `bytes`, splitting them across output shards; copy() does the same with bytes of an input shard. */
  async write(bytes: Uint8Array): Promise<void> {
    await this.put(bytes.length, (out, done, take) => out.write(bytes.subarray(done, done + take)));
  }

  async copy(from: ByteRange, tensor: string): Promise<void> {
    await this.put(from.length, (out, done, take) => out.copyFrom(from.handle, from.position + done, take, from.file, tensor));
  }

  private async put(length: number, emit: (out: OutputFile, done: number, take: number) => Promise<void>): Promise<void> {
    let done = 0;
    while (done < length) {
      if (this.out === null) this.out = await this.staged.create(path.join(this.outDir, this.group.shards[this.shard].relative));
      const last = this.shard === this.group.shards.length - 1;
      const room = last ? Infinity : this.group.shards[this.shard].size - this.written;
      const take = Math.min(room, length - done);
      await emit(this.out, done, take);
      done += take;
      this.written += take;
      if (!last && this.written === this.group.shards[this.shard].size) this.next();
    }
  }

  private next(): void {
    this.shard++;
    this.written = 0;
    this.out = null;
  }

  /** Creates any shard not reached yet (empty shards stay empty files). */
  async finish(): Promise<void> {
    while (this.shard < this.group.shards.length) {
      if (this.out === null) await this.staged.create(path.join(this.outDir, this.group.shards[this.shard].relative));
      this.next();
    }
  }
}
