// Picks the format from the path: *.safetensors, or a TF.js model.json / *weights_manifest.json (or a folder
// holding a model.json); anything else by its first byte, since a JSON file starts with '{' or '['.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import { ModelFileError, firstLine } from './errors';
import { openSafetensors } from './formats/safetensors';
import { openTfjs } from './formats/tfjs';
import type { ModelFile } from './model';

export async function openModel(file: string): Promise<ModelFile> {
  let stat;
  try {
    stat = await fs.stat(file);
  } catch (error) {
    throw new ModelFileError(file, `cannot open: ${firstLine(error)}`);
  }
  if (stat.isDirectory()) return openTfjs(path.join(file, 'model.json'));
  if (file.endsWith('.safetensors')) return openSafetensors(file);
  if (file.endsWith('.json')) return openTfjs(file);
  const handle = await fs.open(file, 'r');
  const first = Buffer.alloc(1);
  try {
    await handle.read(first, 0, 1, 0);
  } finally {
    await handle.close();
  }
  return first[0] === 0x7b || first[0] === 0x5b ? openTfjs(file) : openSafetensors(file);
}
