// A sharded safetensors checkpoint, as Hugging Face writes it: `model.safetensors.index.json` holds
// { "metadata": {...}, "weight_map": { tensor name: shard file } }, and each shard is a safetensors file in the same
// folder. All shards are one model. Every inconsistency is found when the model is opened, before anything is
// written: a missing shard, a shard path leading out of the folder, a tensor in two shards, a tensor the index names
// but its shard lacks, or one a shard holds but the index does not list.
import * as path from 'node:path';

import { ModelFileError } from '../errors';
import { StagedOutput, sameFile } from '../file-io';
import type { ModelFile, ModelTensor } from '../model';
import {
  type SafetensorsShard,
  type SafetensorsTensor,
  openSafetensorsShard,
  readShardTensor,
  shardWriteOrder,
  writeShard,
} from './safetensors';

/** Whether parsed JSON is a safetensors index (as opposed to a TF.js model). */
export function isSafetensorsIndex(parsed: unknown): boolean {
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && 'weight_map' in parsed;
}

/**
 * A path named inside a model file must stay inside the model's folder: relative, without '..', not absolute, not
 * a URL or drive. This is a security check: the output is written under the same relative names.
 */
export function insideFolder(relative: string): boolean {
  if (relative.length === 0 || path.isAbsolute(relative) || path.win32.isAbsolute(relative) || /^[a-z][a-z0-9+.-]*:/i.test(relative))
    return false;
  return !relative.split(/[\\/]/).some((part) => part === '..');
}

function checkWeightMap(file: string, parsed: unknown): Map<string, string> {
  const weightMap = (parsed as { weight_map: unknown }).weight_map;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new ModelFileError(file, 'invalid index: "weight_map" must be an object mapping tensor names to shard files');
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard.length === 0)
      throw new ModelFileError(file, 'invalid index: its shard must be a file name', name);
    if (!insideFolder(shard))
      throw new ModelFileError(file, `invalid index: shard path '${shard}' must be relative, inside the index's folder`, name);
    map.set(name, shard);
  }
  if (map.size === 0) throw new ModelFileError(file, 'invalid index: "weight_map" lists no tensor');
  return map;
}

/** Checks that the shards hold exactly the tensors the index assigns them, each once. */
function checkShards(file: string, weightMap: ReadonlyMap<string, string>, shards: ReadonlyMap<string, SafetensorsShard>): void {
  const holder = new Map<string, string>();
  for (const [relative, shard] of shards) {
    for (const t of shard.header.tensors) {
      const other = holder.get(t.name);
      if (other !== undefined) throw new ModelFileError(file, `is stored in two shards, '${other}' and '${relative}'`, t.name);
      holder.set(t.name, relative);
    }
  }
  for (const [name, relative] of holder) {
    const listed = weightMap.get(name);
    if (listed === undefined) throw new ModelFileError(file, `shard '${relative}' holds it, but the index does not list it`, name);
    if (listed !== relative)
      throw new ModelFileError(file, `the index puts it in shard '${listed}', but it is stored in '${relative}'`, name);
  }
  for (const [name, relative] of weightMap) {
    if (!holder.has(name)) throw new ModelFileError(file, `the index puts it in shard '${relative}', which does not hold it`, name);
  }
}

export async function openSafetensorsIndex(file: string, parsed: unknown): Promise<ModelFile> {
  const weightMap = checkWeightMap(file, parsed);
  const folder = path.dirname(file);
  // Shards in name order: model-00001-of-00004.safetensors, model-00002-…
  const names = [...new Set(weightMap.values())].sort();
  const shards = new Map<string, SafetensorsShard>();
  try {
    for (const relative of names) {
      const count = [...weightMap.values()].filter((s) => s === relative).length;
      const shardFile = path.join(folder, relative);
      try {
        shards.set(relative, await openSafetensorsShard(shardFile));
      } catch (error) {
        if (!(error instanceof ModelFileError) || error.file !== shardFile || !/^cannot open: /.test(error.detail)) throw error;
        throw new ModelFileError(
          file,
          `missing or unreadable shard '${relative}' (the index puts ${count} tensor(s) in it): ${error.detail.replace(/^cannot open: /, '')}`,
        );
      }
    }
    checkShards(file, weightMap, shards);
  } catch (error) {
    for (const s of shards.values()) await s.handle.close().catch(() => undefined);
    throw error;
  }
  const shardOf = new Map<ModelTensor, SafetensorsShard>();
  for (const shard of shards.values()) for (const t of shard.header.tensors) shardOf.set(t, shard);
  const tensors: SafetensorsTensor[] = [...shards.values()].flatMap((s) => s.header.tensors);

  const rewrite: ModelFile['rewrite'] = async (output, selected, transform, inPlace) => {
    // -o names the new folder, or the new index file in it.
    const outFolder = inPlace ? folder : output.endsWith('.json') ? path.dirname(output) : output;
    const indexOut = inPlace ? file : output.endsWith('.json') ? output : path.join(outFolder, path.basename(file));
    const targets = names.map((relative) => path.join(outFolder, relative));
    if (!inPlace) {
      const inputs = [file, ...[...shards.values()].map((s) => s.file)];
      for (const target of [indexOut, ...targets]) {
        for (const input of inputs) {
          if (await sameFile(target, input))
            throw new ModelFileError(target, `would overwrite the input ${input}; choose another folder, or use --in-place`);
        }
      }
    }
    const files: string[] = [];
    await StagedOutput.run(async (staged) => {
      for (const [i, relative] of names.entries()) {
        const shard = shards.get(relative)!;
        if (shard.header.tensors.some((t) => selected.has(t))) await writeShard(staged, targets[i], shard, selected, transform);
        else if (inPlace) continue;
        else await (await staged.copy(targets[i], shard.file)).finish();
        files.push(targets[i]);
      }
      // The index is unchanged (same names, dtypes and shapes): copied verbatim, renamed into place last.
      if (!inPlace) {
        await (await staged.copy(indexOut, file)).finish();
        files.push(indexOut);
      }
    });
    return { widened: [], files };
  };

  return {
    format: 'safetensors',
    path: file,
    file,
    description: `safetensors, ${shards.size} shard${shards.size > 1 ? 's' : ''}`,
    tensors,
    defaultDim: 0,
    read: (tensor, options) => readShardTensor(shardOf.get(tensor)!, tensor, options),
    writeOrder: (selected) => {
      const set = new Set(selected);
      return [...shards.values()].flatMap((s) => shardWriteOrder(s, set));
    },
    rewrite,
    close: async () => {
      for (const s of shards.values()) await s.handle.close().catch(() => undefined);
    },
  };
}
