// Opens a model by what the path holds: a .safetensors file; a safetensors index (*.safetensors.index.json, or any
// JSON with "weight_map"); a TF.js model.json or *weights_manifest.json; an .onnx file; or a folder holding exactly
// one of these. A folder with none, or with several, is a one-line error that lists what it found.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import { ModelFileError } from './errors';
import { describeFsError } from './file-io';
import { openOnnx } from './formats/onnx';
import { openSafetensors } from './formats/safetensors';
import { isSafetensorsIndex, openSafetensorsIndex } from './formats/safetensors-index';
import { openTfjs, readJson } from './formats/tfjs';
import type { ModelFile } from './model';

const INDEX_SUFFIX = '.safetensors.index.json';

async function openJson(file: string): Promise<ModelFile> {
  const json = await readJson(file);
  return isSafetensorsIndex(json.parsed) ? openSafetensorsIndex(file, json.parsed) : openTfjs(file, json);
}

/** The model files a folder holds: each index (its shards are part of it), each other .safetensors, model.json, each .onnx. */
async function candidates(folder: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = (await fs.readdir(folder, { withFileTypes: true }))
      .filter((e) => e.isFile() || e.isSymbolicLink())
      .map((e) => e.name)
      .sort();
  } catch (error) {
    throw new ModelFileError(folder, `cannot read the folder: ${describeFsError(error)}`);
  }
  const indexes = entries.filter((name) => name.endsWith(INDEX_SUFFIX));
  const sharded = new Set<string>();
  for (const index of indexes) {
    const { parsed } = await readJson(path.join(folder, index));
    const map = isSafetensorsIndex(parsed) ? (parsed as { weight_map: unknown }).weight_map : null;
    if (map !== null && typeof map === 'object')
      for (const shard of Object.values(map)) if (typeof shard === 'string') sharded.add(path.normalize(shard));
  }
  return [
    ...indexes,
    ...entries.filter((name) => name.endsWith('.safetensors') && !sharded.has(name)),
    ...entries.filter((name) => name === 'model.json'),
    ...entries.filter((name) => name.endsWith('.onnx')),
  ];
}

async function openFolder(folder: string): Promise<ModelFile> {
  const found = await candidates(folder);
  if (found.length === 0) {
    throw new ModelFileError(folder, `holds no model: looked for *${INDEX_SUFFIX}, *.safetensors, model.json (TF.js) and *.onnx`);
  }
  if (found.length > 1) throw new ModelFileError(folder, `holds ${found.length} models, so name one of them: ${found.join(', ')}`);
  const model = await openFile(path.join(folder, found[0]));
  return { ...model, path: folder, description: `${model.description}, from ${found[0]}` };
}

async function openFile(file: string): Promise<ModelFile> {
  if (file.endsWith('.safetensors')) return openSafetensors(file);
  if (file.endsWith('.json')) return openJson(file);
  if (file.endsWith('.onnx')) return openOnnx(file);
  // Any other name: JSON starts with '{' or '['; anything else is taken for safetensors, whose header says if not.
  const handle = await fs.open(file, 'r');
  const first = Buffer.alloc(1);
  try {
    await handle.read(first, 0, 1, 0);
  } finally {
    await handle.close();
  }
  return first[0] === 0x7b || first[0] === 0x5b ? openJson(file) : openSafetensors(file);
}

export async function openModel(file: string): Promise<ModelFile> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    throw new ModelFileError(file, `cannot open: ${describeFsError(error)}`);
  }
  return stat.isDirectory() ? openFolder(file) : openFile(file);
}
