// Every kind of damaged model file: a one-line error naming the file and, where known, the tensor; nothing written.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';
import { ModelFileError } from '../../cli/errors';
import { main } from '../../cli/main';
import { encodeFloat16 } from '../../cli/formats/half';
import { listing, rawSafetensors, reportOptions, temporaryFolder, tensorOf, writeSafetensors, writeTfjs } from '../support/cli-fixtures';

interface BadCase {
  what: string;
  /** Writes the damaged model into the folder and returns its path. */
  make: (folder: string) => string;
  message: RegExp;
  tensor?: string;
}

const f32 = (n: number, fill = 0.5) => new Uint8Array(new Float32Array(n).fill(fill).buffer);

function goodSafetensors(folder: string): string {
  return writeSafetensors(folder, 'good.safetensors', [tensorOf('a.weight', 'F32', [6, 5]), tensorOf('b.weight', 'F32', [4, 4])]);
}

function rewriteJson(file: string, edit: (json: any) => void): void {
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(json);
  fs.writeFileSync(file, JSON.stringify(json));
}

const tfjsWeights = [
  { name: 'dense/kernel', shape: [12, 9], dtype: 'float32' as const },
  { name: 'dense/bias', shape: [9], dtype: 'float32' as const },
  { name: 'out/kernel', shape: [9, 7], dtype: 'float32' as const, quantization: 'uint8' as const },
];

const CASES: BadCase[] = [
  {
    what: 'safetensors: a truncated file',
    make: (folder) => {
      const file = goodSafetensors(folder);
      fs.truncateSync(file, fs.statSync(file).size - 10);
      return file;
    },
    message: /out of range: the data section has \d+ bytes \(truncated file\?\)/,
    tensor: 'b.weight',
  },
  {
    what: 'safetensors: a file shorter than its header length field',
    make: (folder) => {
      const file = path.join(folder, 'tiny.safetensors');
      fs.writeFileSync(file, Buffer.from([1, 2, 3]));
      return file;
    },
    message: /truncated: 3 bytes, too short for the 8-byte header length/,
  },
  {
    what: 'safetensors: an absurd header length',
    make: (folder) => {
      const file = path.join(folder, 'absurd.safetensors');
      const bytes = Buffer.alloc(64);
      bytes.writeBigUInt64LE(2n ** 62n, 0);
      fs.writeFileSync(file, bytes);
      return file;
    },
    message: /header length 4611686018427387904 is absurd/,
  },
  {
    what: 'safetensors: a header length past the end of the file',
    make: (folder) => {
      const file = path.join(folder, 'short.safetensors');
      const bytes = Buffer.alloc(40);
      bytes.writeBigUInt64LE(1000n, 0);
      fs.writeFileSync(file, bytes);
      return file;
    },
    message: /truncated: the header claims 1000 bytes but the file has only 32/,
  },
  {
    what: 'safetensors: invalid JSON',
    make: (folder) => rawSafetensors(folder, 'json.safetensors', null, f32(4), '{"a": {"dtype": "F32",'),
    message: /invalid JSON header/,
  },
  {
    what: 'safetensors: a header that is not an object',
    make: (folder) => rawSafetensors(folder, 'array.safetensors', [1, 2], new Uint8Array(0)),
    message: /the JSON is not an object/,
  },
  {
    what: 'safetensors: invalid UTF-8 in the header',
    make: (folder) => {
      const file = rawSafetensors(folder, 'utf8.safetensors', null, new Uint8Array(0), '{"\u00e9": 1}');
      const bytes = fs.readFileSync(file);
      bytes[10] = 0xff;
      fs.writeFileSync(file, bytes);
      return file;
    },
    message: /invalid JSON header/,
  },
  {
    what: 'safetensors: an unknown dtype',
    make: (folder) => rawSafetensors(folder, 'dtype.safetensors', { w: { dtype: 'F12', shape: [2, 2], data_offsets: [0, 16] } }, f32(4)),
    message: /unknown dtype 'F12'/,
    tensor: 'w',
  },
  {
    what: 'safetensors: a shape/size mismatch',
    make: (folder) => rawSafetensors(folder, 'size.safetensors', { w: { dtype: 'F32', shape: [3, 2], data_offsets: [0, 16] } }, f32(4)),
    message: /shape\/size mismatch: shape \[3, 2\] of F32 needs 24 bytes but data_offsets \[0, 16\] hold 16/,
    tensor: 'w',
  },
  {
    what: 'safetensors: offsets out of range',
    make: (folder) => rawSafetensors(folder, 'range.safetensors', { w: { dtype: 'F32', shape: [2, 50], data_offsets: [0, 400] } }, f32(10)),
    message: /data_offsets \[0, 400\] out of range: the data section has 40 bytes/,
    tensor: 'w',
  },
  {
    what: 'safetensors: overlapping offsets',
    make: (folder) =>
      rawSafetensors(
        folder,
        'overlap.safetensors',
        { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] } },
        f32(6),
      ),
    message: /data_offsets \[8, 24\] overlap tensor 'a' \[0, 16\]/,
    tensor: 'b',
  },
  {
    what: 'safetensors: a gap between tensors',
    make: (folder) => rawSafetensors(folder, 'gap.safetensors', { a: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] } }, f32(6)),
    message: /leave a gap of 8 bytes/,
    tensor: 'a',
  },
  {
    what: 'safetensors: bytes after the last tensor',
    make: (folder) => rawSafetensors(folder, 'tail.safetensors', { a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, f32(5)),
    message: /4 bytes after the last tensor belong to none/,
  },
  {
    what: 'safetensors: offsets that end before they begin',
    make: (folder) => rawSafetensors(folder, 'order.safetensors', { a: { dtype: 'F32', shape: [0], data_offsets: [16, 0] } }, f32(4)),
    message: /data_offsets \[16, 0\] end before they begin/,
    tensor: 'a',
  },
  {
    what: 'safetensors: __metadata__ with a non-string value',
    make: (folder) => rawSafetensors(folder, 'meta.safetensors', { __metadata__: { epoch: 3 } }, new Uint8Array(0)),
    message: /__metadata__\.epoch must be a string/,
  },
  {
    what: 'tfjs: invalid JSON',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').slice(0, 50));
      return file;
    },
    message: /invalid JSON/,
  },
  {
    what: 'tfjs: JSON that is not a model',
    make: (folder) => {
      const file = path.join(folder, 'model.json');
      fs.writeFileSync(file, '{"modelTopology": {}}');
      return file;
    },
    message: /not a TensorFlow\.js model/,
  },
  {
    what: 'tfjs: a missing shard',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights, { shardSize: 300 });
      fs.rmSync(path.join(folder, 'group1-shard2.bin'));
      return file;
    },
    message: /missing or unreadable shard 'group1-shard2\.bin'.*ENOENT/,
  },
  {
    what: 'tfjs: a truncated shard',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights, { shardSize: 300 });
      fs.truncateSync(path.join(folder, 'group1-shard2.bin'), 10);
      return file;
    },
    message: /group 0: the weights need 531 bytes but its shards \(group1-shard1\.bin, group1-shard2\.bin\) hold 310: truncated shard/,
    tensor: 'dense/kernel',
  },
  {
    what: 'tfjs: a shape/size mismatch',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights);
      rewriteJson(file, (json) => (json.weightsManifest[0].weights[0].shape = [12, 10]));
      return file;
    },
    message: /the weights need 579 bytes but its shards .* hold 531: truncated shard, or a shape\/size mismatch/,
    tensor: 'out/kernel',
  },
  {
    what: 'tfjs: an unknown dtype',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights);
      rewriteJson(file, (json) => (json.weightsManifest[0].weights[1].dtype = 'float64'));
      return file;
    },
    message: /unknown dtype "float64"/,
    tensor: 'dense/bias',
  },
  {
    what: 'tfjs: an unknown quantization dtype',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights);
      rewriteJson(file, (json) => (json.weightsManifest[0].weights[2].quantization.dtype = 'int4'));
      return file;
    },
    message: /unknown quantization dtype "int4"/,
    tensor: 'out/kernel',
  },
  {
    what: 'tfjs: a shard path outside the model folder',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights);
      rewriteJson(file, (json) => (json.weightsManifest[0].paths[0] = '../elsewhere.bin'));
      return file;
    },
    message: /shard path '\.\.\/elsewhere\.bin' must be relative, inside the model's folder/,
  },
];

/** Models with a non-finite weight: report marks its row and exits 1; normalize refuses and writes nothing. */
const NON_FINITE: (Omit<BadCase, 'message'> & { element: RegExp })[] = [
  {
    what: 'safetensors: NaN in a weight',
    make: (folder) => {
      const t = tensorOf('bad.weight', 'F32', [5, 4]);
      (t.values as Float32Array)[7] = NaN;
      return writeSafetensors(folder, 'nan.safetensors', [tensorOf('ok.weight', 'F32', [3, 3]), t]);
    },
    tensor: 'bad.weight',
    element: /^NaN at element 7$/,
  },
  {
    what: 'safetensors: Infinity in a float16 weight',
    make: (folder) => {
      const data = encodeFloat16(Float32Array.from({ length: 12 }, (_, i) => (i === 5 ? 1e6 : i / 10)));
      return writeSafetensors(folder, 'inf16.safetensors', [{ name: 'half.weight', dtype: 'F16', shape: [3, 4], data }]);
    },
    tensor: 'half.weight',
    element: /^Infinity at element 5$/,
  },
  {
    what: 'tfjs: a standalone manifest with NaN in a weight',
    make: (folder) => {
      const { file } = writeTfjs(folder, tfjsWeights, { manifestOnly: true });
      const shard = path.join(folder, 'group1-shard1.bin');
      const bytes = fs.readFileSync(shard);
      bytes.writeFloatLE(NaN, 4 * 20);
      fs.writeFileSync(shard, bytes);
      return file;
    },
    tensor: 'dense/kernel',
    element: /^NaN at element 20$/,
  },
];

async function expectModelError(run: () => Promise<unknown>, file: string, c: Pick<BadCase, 'message' | 'tensor'>): Promise<void> {
  await assert.rejects(run, (error: unknown) => {
    assert.ok(error instanceof ModelFileError, `expected a ModelFileError, got ${String(error)}`);
    const message = (error as Error).message;
    assert.ok(!message.includes('\n'), `one line: ${message}`);
    assert.ok(message.startsWith(`${file}: `), `names the file first: ${message}`);
    if (c.tensor !== undefined) assert.ok(message.includes(`tensor '${c.tensor}': `), `names tensor '${c.tensor}': ${message}`);
    assert.match(message, c.message);
    return true;
  });
}

describe('CLI: bad model files', () => {
  const quiet = () => undefined;
  const options = reportOptions({ tolerance: 1e-6, maxIterations: 1000 });

  for (const c of CASES) {
    it(`${c.what}: a one-line error naming the file${c.tensor ? ' and tensor' : ''}, and no output written`, async () => {
      const folder = temporaryFolder();
      const outFolder = temporaryFolder();
      try {
        const file = c.make(folder);
        const before = listing(folder);
        const inputBytes = fs.readFileSync(file);
        await expectModelError(() => report(file, options, quiet), file, c);
        const output = path.join(outFolder, path.basename(file));
        await expectModelError(
          () => normalize(file, { ...options, output, inPlace: false, target: 1, clip: false }, quiet, quiet),
          file,
          c,
        );
        assert.deepEqual(listing(outFolder), [], 'nothing written, not even a temporary file');
        // --in-place on a bad file leaves the original exactly as it was.
        await expectModelError(
          () => normalize(file, { ...options, output: file, inPlace: true, target: 1, clip: false }, quiet, quiet),
          file,
          c,
        );
        assert.deepEqual(listing(folder), before, 'no temporary file left beside the input');
        assert.ok(fs.readFileSync(file).equals(inputBytes), 'the input is unchanged');
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
        fs.rmSync(outFolder, { recursive: true, force: true });
      }
    });
  }
});

describe('CLI: a non-finite tensor', () => {
  const quiet = () => undefined;
  const options = reportOptions({ tolerance: 1e-6, maxIterations: 1000 });

  for (const c of NON_FINITE) {
    it(`${c.what}: report marks its row and reports the rest, exit code 1; normalize writes nothing`, async () => {
      const folder = temporaryFolder();
      const outFolder = temporaryFolder();
      try {
        const file = c.make(folder);
        for (const exact of [false, true]) {
          const r = await report(file, { ...options, exact }, quiet);
          const row = r.tensors.find((t) => t.name === c.tensor)!;
          assert.equal(row.status, 'non-finite');
          assert.match(row.note, /^non-finite: /);
          assert.match(row.note.replace('non-finite: ', ''), c.element);
          assert.equal(row.sigma, null);
          assert.equal(r.totals.nonFinite, 1);
          for (const other of r.tensors.filter((t) => t.name !== c.tensor))
            assert.ok(other.status === 'ok' && other.sigma! > 0, `${other.name} is reported`);
          assert.equal(r.totals.tensors, r.tensors.length - 1);
        }
        const output = path.join(outFolder, path.basename(file));
        await expectModelError(() => normalize(file, { ...options, output, inPlace: false, target: 1, clip: false }, quiet, quiet), file, {
          message: /cannot normalize: non-finite weights \((NaN|Infinity) at element \d+\); nothing was written/,
          tensor: c.tensor,
        });
        assert.deepEqual(listing(outFolder), []);
        // Through the command: the table with the marked row on stdout, exit code 1.
        let stdout = '';
        const status = await main(['report', file], { out: (t: string) => (stdout += t), err: () => undefined });
        assert.equal(status, 1);
        const line = stdout.split('\n').find((l) => l.startsWith(c.tensor!))!;
        assert.match(line, /\s-\s+-\s+[\d.]+\s+non-finite: (NaN|Infinity) at element \d+$/);
        assert.match(stdout, /1 non-finite \(not computed; exit code 1\)/);
        assert.match(stdout, /nothing more \(over the rows with σ\): /);
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
        fs.rmSync(outFolder, { recursive: true, force: true });
      }
    });
  }
});
