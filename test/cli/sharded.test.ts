// Sharded safetensors checkpoints (model.safetensors.index.json and its shards) and folders recognized by what
// they hold: one model across shards, every shard and the index written, byte for byte where unchanged, and every
// inconsistency of the index a one-line error before anything is written.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';
import { ModelFileError } from '../../cli/errors';
import { openModel } from '../../cli/open-model';
import { type FloatArray, exactSpectralNorm } from '../../lib';
import { listing, temporaryFolder, tensorOf, writeSafetensors, writeTfjs } from '../support/cli-fixtures';
import { assertClose } from '../support/helpers';
import { writeOnnx } from '../support/onnx-fixtures';

const quiet = () => undefined;
const OPTIONS = { include: [], exclude: [], dims: [], backend: 'auto' as const, tolerance: 1e-9, maxIterations: 5000, json: false };
const INDEX = 'model.safetensors.index.json';
const UNIT_ROUNDOFF: Record<string, number> = { F32: 2 ** -24, F64: 2 ** -53, F16: 2 ** -11, BF16: 2 ** -8 };

/** Three shards: two with weights, one with only a bias and an int tensor (never changed). */
function writeSharded(folder: string) {
  const shards = [
    [tensorOf('layers.0.weight', 'F16', [12, 7]), tensorOf('layers.0.bias', 'F32', [12]), tensorOf('layers.1.weight', 'BF16', [5, 12])],
    [tensorOf('layers.2.weight', 'F32', [9, 5, 3]), tensorOf('layers.3.weight', 'F64', [4, 9])],
    [tensorOf('norm.bias', 'F32', [4]), tensorOf('steps', 'I32', [2, 2])],
  ];
  const weightMap: Record<string, string> = {};
  shards.forEach((tensors, i) => {
    const name = `model-0000${i + 1}-of-00003.safetensors`;
    writeSafetensors(folder, name, tensors);
    for (const t of tensors) weightMap[t.name] = name;
  });
  const index = path.join(folder, INDEX);
  fs.writeFileSync(index, JSON.stringify({ metadata: { total_size: 1234 }, weight_map: weightMap }, null, 2));
  return { index, tensors: shards.flat() };
}

function editIndex(index: string, edit: (json: any) => void): void {
  const json = JSON.parse(fs.readFileSync(index, 'utf8'));
  edit(json);
  fs.writeFileSync(index, JSON.stringify(json));
}

describe('CLI: sharded safetensors', () => {
  let folder: string;
  let out: string;
  beforeEach(() => {
    folder = temporaryFolder();
    out = temporaryFolder();
  });
  afterEach(() => {
    fs.rmSync(folder, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('report on the index, or on its folder, treats all shards as one model', async () => {
    const { index, tensors } = writeSharded(folder);
    for (const target of [index, folder]) {
      const r = await report(target, { ...OPTIONS, exact: true }, quiet);
      assert.equal(r.format, 'safetensors');
      assert.match(r.storage, /^safetensors, 3 shards/);
      assert.deepEqual(
        r.tensors.map((t) => t.name),
        ['layers.0.weight', 'layers.1.weight', 'layers.2.weight', 'layers.3.weight'],
      );
      assert.deepEqual(r.skipped, ['layers.0.bias', 'norm.bias', 'steps']);
      for (const row of r.tensors) {
        const t = tensors.find((x) => x.name === row.name)!;
        assert.equal(row.sigma, exactSpectralNorm(t.values as FloatArray, t.shape));
      }
    }
  });

  for (const form of ['a folder', 'the new index file'] as const) {
    it(`normalize -o ${form}: every shard and the index, byte for byte where nothing changed`, async () => {
      const { index } = writeSharded(folder);
      const target = form === 'a folder' ? path.join(out, 'new') : path.join(out, 'new', INDEX);
      const n = await normalize(index, { ...OPTIONS, output: target, inPlace: false, target: 1, clip: false }, quiet, quiet);
      assert.equal(n.totals.changed, 4);
      const written = path.join(out, 'new');
      assert.deepEqual(listing(written), listing(folder));
      assert.ok(fs.readFileSync(path.join(written, INDEX)).equals(fs.readFileSync(index)), 'the index is copied verbatim');
      assert.ok(
        fs
          .readFileSync(path.join(written, 'model-00003-of-00003.safetensors'))
          .equals(fs.readFileSync(path.join(folder, 'model-00003-of-00003.safetensors'))),
      );
      // Each stored tensor is W/σ for the σ the command reported (which power iteration gets to within its stopping
      // rule, not exactly): its exact σ is σ_exact(W)/σ_reported up to the rounding to its dtype, by Weyl within
      // u·‖W/σ‖_F. That checks what was written, whatever the iteration's own error.
      const [model, input] = [await openModel(written), await openModel(folder)];
      try {
        for (const t of model.tensors.filter((x) => x.numeric && x.shape.length >= 2)) {
          const values = await model.read(t);
          let sum = 0;
          for (const x of values) sum += x * x;
          const before = exactSpectralNorm(await input.read(input.tensors.find((x) => x.name === t.name)!), t.shape);
          const reported = n.tensors.find((x) => x.name === t.name)!.sigma!;
          const rtol = UNIT_ROUNDOFF[t.dtype] * Math.sqrt(sum) + 1e-12;
          assertClose(exactSpectralNorm(values, t.shape), before / reported, { rtol, atol: 0 }, t.name);
          // And the iteration came close to the exact σ (its tolerance, 1e-9, bounds the change between iterations).
          assertClose(reported, before, { rtol: 2e-6, atol: 0 }, `σ reported for ${t.name}`);
        }
      } finally {
        await model.close();
        await input.close();
      }
      // Shard headers and the unselected bias are as they were.
      for (const shard of ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors']) {
        const a = fs.readFileSync(path.join(folder, shard));
        const b = fs.readFileSync(path.join(written, shard));
        const headerEnd = 8 + Number(a.readBigUInt64LE(0));
        assert.equal(b.length, a.length);
        assert.ok(b.subarray(0, headerEnd).equals(a.subarray(0, headerEnd)), `${shard}: header`);
      }
      const bias = (file: string) => {
        const bytes = fs.readFileSync(file);
        const start = 8 + Number(bytes.readBigUInt64LE(0));
        const header = JSON.parse(bytes.subarray(8, start).toString());
        const [a, b] = header['layers.0.bias'].data_offsets;
        return bytes.subarray(start + a, start + b);
      };
      assert.ok(
        bias(path.join(written, 'model-00001-of-00003.safetensors')).equals(bias(path.join(folder, 'model-00001-of-00003.safetensors'))),
      );
    });
  }

  it('--in-place replaces each changed shard by a rename, leaves the others and the index untouched', async () => {
    const { index } = writeSharded(folder);
    const inodes = Object.fromEntries(listing(folder).map((name) => [name, fs.statSync(path.join(folder, name)).ino]));
    await normalize(folder, { ...OPTIONS, include: [/^layers\.2/], output: folder, inPlace: true, target: 1, clip: false }, quiet, quiet);
    const now = Object.fromEntries(listing(folder).map((name) => [name, fs.statSync(path.join(folder, name)).ino]));
    assert.deepEqual(Object.keys(now), Object.keys(inodes), 'no temporary file left');
    for (const name of Object.keys(inodes)) assert.equal(now[name] !== inodes[name], name === 'model-00002-of-00003.safetensors', name);
    const r = await report(index, { ...OPTIONS, include: [/^layers\.2/], exact: true }, quiet);
    assertClose(r.tensors[0].sigma!, 1, { rtol: 1e-5, atol: 0 }, 'σ after --in-place');
    await assert.rejects(
      () => normalize(index, { ...OPTIONS, output: folder, inPlace: false, target: 1, clip: false }, quiet, quiet),
      /would overwrite the input/,
    );
  });

  const BAD: { what: string; damage: (folder: string, index: string) => void; message: RegExp; tensor?: string }[] = [
    {
      what: 'a missing shard',
      damage: (f) => fs.rmSync(path.join(f, 'model-00002-of-00003.safetensors')),
      message: /missing or unreadable shard 'model-00002-of-00003\.safetensors' \(the index puts 2 tensor\(s\) in it\): ENOENT/,
    },
    {
      what: 'a tensor listed in two shards',
      damage: (f) =>
        writeSafetensors(f, 'model-00003-of-00003.safetensors', [
          tensorOf('norm.bias', 'F32', [4]),
          tensorOf('steps', 'I32', [2, 2]),
          tensorOf('layers.3.weight', 'F32', [4, 9]),
        ]),
      message: /is stored in two shards, 'model-00002-of-00003\.safetensors' and 'model-00003-of-00003\.safetensors'/,
      tensor: 'layers.3.weight',
    },
    {
      what: 'an index naming a tensor its shard lacks',
      damage: (_f, index) => editIndex(index, (j) => (j.weight_map['layers.9.weight'] = 'model-00001-of-00003.safetensors')),
      message: /the index puts it in shard 'model-00001-of-00003\.safetensors', which does not hold it/,
      tensor: 'layers.9.weight',
    },
    {
      what: 'a shard holding a tensor the index does not list',
      damage: (_f, index) => editIndex(index, (j) => delete j.weight_map['layers.0.bias']),
      message: /shard 'model-00001-of-00003\.safetensors' holds it, but the index does not list it/,
      tensor: 'layers.0.bias',
    },
    {
      what: 'an index and a shard that disagree on where a tensor is',
      damage: (_f, index) => editIndex(index, (j) => (j.weight_map['steps'] = 'model-00001-of-00003.safetensors')),
      message: /the index puts it in shard 'model-00001-of-00003\.safetensors', but it is stored in 'model-00003-of-00003\.safetensors'/,
      tensor: 'steps',
    },
    {
      what: 'a shard path escaping the folder',
      damage: (_f, index) => editIndex(index, (j) => (j.weight_map['steps'] = '../model-00003-of-00003.safetensors')),
      message: /shard path '\.\.\/model-00003-of-00003\.safetensors' must be relative, inside the index's folder/,
      tensor: 'steps',
    },
    {
      what: 'an absolute shard path',
      damage: (_f, index) => editIndex(index, (j) => (j.weight_map['steps'] = '/etc/passwd')),
      message: /shard path '\/etc\/passwd' must be relative/,
      tensor: 'steps',
    },
    {
      what: 'a weight_map that is not an object',
      damage: (_f, index) => editIndex(index, (j) => (j.weight_map = ['a'])),
      message: /"weight_map" must be an object/,
    },
    {
      what: 'a damaged shard',
      damage: (f) => fs.truncateSync(path.join(f, 'model-00002-of-00003.safetensors'), 100),
      message: /out of range|truncated/,
    },
  ];

  for (const c of BAD) {
    it(`${c.what}: a one-line error, and nothing written`, async () => {
      const { index } = writeSharded(folder);
      c.damage(folder, index);
      const before = listing(folder);
      const check = (error: unknown) => {
        assert.ok(error instanceof ModelFileError, String(error));
        assert.ok(!error.message.includes('\n'));
        if (c.tensor) assert.ok(error.message.includes(`tensor '${c.tensor}': `), error.message);
        assert.match(error.message, c.message);
        return true;
      };
      await assert.rejects(() => report(index, { ...OPTIONS, exact: false }, quiet), check);
      await assert.rejects(
        () => normalize(index, { ...OPTIONS, output: path.join(out, 'new'), inPlace: false, target: 1, clip: false }, quiet, quiet),
        check,
      );
      await assert.rejects(
        () => normalize(index, { ...OPTIONS, output: index, inPlace: true, target: 1, clip: false }, quiet, quiet),
        check,
      );
      assert.deepEqual(listing(out), [], 'not even the output folder');
      assert.deepEqual(listing(folder), before);
    });
  }
});

describe('CLI: a folder is recognized by what it holds', () => {
  let folder: string;
  beforeEach(() => {
    folder = temporaryFolder();
  });
  afterEach(() => fs.rmSync(folder, { recursive: true, force: true }));

  const open = async (target: string) => (await report(target, { ...OPTIONS, exact: true }, quiet)).storage;

  it('a single .safetensors, a TF.js model.json, an .onnx, or a sharded index', async () => {
    writeSafetensors(folder, 'weights.safetensors', [tensorOf('w', 'F32', [3, 3])]);
    assert.equal(await open(folder), 'safetensors, from weights.safetensors');
    fs.rmSync(path.join(folder, 'weights.safetensors'));
    writeTfjs(folder, [{ name: 'k', shape: [3, 4], dtype: 'float32' }]);
    assert.match(await open(folder), /^TensorFlow\.js, 1 shard file\(s\), from model\.json$/);
    for (const name of listing(folder)) fs.rmSync(path.join(folder, name));
    writeOnnx(folder);
    assert.equal(await open(folder), 'ONNX, external data in 1 file, from model.onnx');
    for (const name of listing(folder)) fs.rmSync(path.join(folder, name));
    writeSharded(folder);
    assert.equal(await open(folder), 'safetensors, 3 shards, from model.safetensors.index.json');
  });

  it('an ambiguous folder lists its candidates; an empty one says what it looked for', async () => {
    writeSafetensors(folder, 'a.safetensors', [tensorOf('w', 'F32', [3, 3])]);
    writeOnnx(folder);
    await assert.rejects(
      () => open(folder),
      (e: Error) => {
        assert.equal(e.message, `${folder}: holds 2 models, so name one of them: a.safetensors, model.onnx`);
        return true;
      },
    );
    const empty = path.join(folder, 'empty');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'README.md'), 'not a model');
    await assert.rejects(
      () => open(empty),
      /empty: holds no model: looked for \*\.safetensors\.index\.json, \*\.safetensors, model\.json \(TF\.js\) and \*\.onnx$/,
    );
  });

  it('normalize on a folder writes the model under its own name into the -o folder', async () => {
    writeOnnx(folder, { embedOnly: true });
    const out = path.join(folder, 'out');
    const n = await normalize(folder, { ...OPTIONS, output: out, inPlace: false, target: 1, clip: false }, quiet, quiet);
    assert.equal(n.output, path.join(out, 'model.onnx'));
    assert.deepEqual(listing(out), ['model.onnx']);
  });
});
