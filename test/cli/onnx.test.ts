// ONNX models: initializers in raw_data, typed fields and external data; float32, float64, float16 and bfloat16;
// ConvTranspose weights along dim 1; normalize replaces only the selected initializers' data, every other byte
// survives, and (where Debian's python3-onnx is installed) the output passes onnx.checker and numpy agrees on σ.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';
import { ModelFileError } from '../../cli/errors';
import { type FloatArray, exactSpectralNorm } from '../../lib';
import { listing, temporaryFolder } from '../support/cli-fixtures';
import { assertClose } from '../support/helpers';
import { DataType, decodeOnnx, onnx, writeOnnx } from '../support/onnx-fixtures';

const quiet = () => undefined;
const OPTIONS = { include: [], exclude: [], dims: [], backend: 'auto' as const, tolerance: 1e-9, maxIterations: 5000, json: false };
const UNIT_ROUNDOFF: Record<number, number> = {
  [DataType.FLOAT]: 2 ** -24,
  [DataType.DOUBLE]: 2 ** -53,
  [DataType.FLOAT16]: 2 ** -11,
  [DataType.BFLOAT16]: 2 ** -8,
};

/** σ of a stored W/σ is 1 up to the rounding to its dtype (Weyl: ≤ u·‖W‖_F) plus the iteration's tolerance. */
function assertUnitSigma(values: FloatArray, shape: number[], dim: number, dataType: number, what: string): void {
  let sum = 0;
  for (const x of values) sum += x * x;
  const frobenius = Math.sqrt(sum);
  const rtol = UNIT_ROUNDOFF[dataType] * frobenius + (dataType === DataType.DOUBLE ? 1e-8 : 2e-6);
  assertClose(exactSpectralNorm(values, shape, { dim }), 1, { rtol, atol: 0 }, what);
}

/** Values of every float initializer of a model, read back by onnx-proto and a plain decode (not the CLI's). */
function initializerValues(file: string): Map<string, { values: FloatArray; shape: number[]; dataType: number }> {
  const model = decodeOnnx(file);
  const result = new Map();
  for (const t of model.graph.initializer) {
    let bytes: Buffer | null = null;
    if (t.rawData) bytes = Buffer.from(t.rawData);
    if (t.dataLocation === 1) {
      const e = Object.fromEntries(t.externalData.map((x: { key: string; value: string }) => [x.key, x.value]));
      bytes = fs.readFileSync(path.join(path.dirname(file), e.location)).subarray(Number(e.offset), Number(e.offset) + Number(e.length));
    }
    const aligned = bytes ? new Uint8Array(bytes).buffer : null;
    let values: FloatArray | null = null;
    if (t.dataType === DataType.FLOAT) values = aligned ? new Float32Array(aligned) : Float32Array.from(t.floatData);
    else if (t.dataType === DataType.DOUBLE) values = aligned ? new Float64Array(aligned) : Float64Array.from(t.doubleData);
    else if (t.dataType === DataType.FLOAT16 || t.dataType === DataType.BFLOAT16) {
      const bits = aligned ? new Uint16Array(aligned) : Uint16Array.from(t.int32Data);
      values =
        t.dataType === DataType.BFLOAT16
          ? new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer)
          : Float32Array.from(bits, (b) => {
              const sign = b & 0x8000 ? -1 : 1;
              const exponent = (b >> 10) & 0x1f;
              const fraction = b & 0x3ff;
              if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
              if (exponent === 31) return fraction ? NaN : sign * Infinity;
              return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
            });
    }
    if (values) result.set(t.name, { values, shape: t.dims, dataType: t.dataType });
  }
  return result;
}

/** The model as onnx-proto decodes it, with the named initializers' data (and only that) removed. */
function withoutData(file: string, names: readonly string[]): unknown {
  const model = decodeOnnx(file);
  for (const t of model.graph.initializer) {
    if (!names.includes(t.name)) continue;
    for (const key of ['rawData', 'floatData', 'doubleData', 'int32Data']) delete t[key];
  }
  return model;
}

/** Debian's python3 with onnx and numpy, or why not. */
function pythonOnnx(): { python: string } | { reason: string } {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', 'import onnx, numpy; print(onnx.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python };
  }
  return { reason: 'python3 with the onnx module (Debian: apt-get install python3-onnx) is not installed' };
}

const CHECK_SCRIPT = `
import json, sys
import numpy as np
import onnx
from onnx import numpy_helper
path, dims = sys.argv[1], json.loads(sys.argv[2])
onnx.checker.check_model(path, full_check=True)
model = onnx.load(path)
out = {}
for t in model.graph.initializer:
    a = numpy_helper.to_array(t)
    if t.name in dims:
        w = np.moveaxis(a.astype(np.float64), dims[t.name], 0)
        out[t.name] = float(np.linalg.norm(w.reshape(w.shape[0], -1), 2))
print(json.dumps(out))
`;

describe('CLI: ONNX models', () => {
  let folder: string;
  beforeEach(() => {
    folder = temporaryFolder();
  });
  afterEach(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('report reads every storage and dtype, ConvTranspose along dim 1, and agrees with exactSpectralNorm', async () => {
    const { file, weights } = writeOnnx(folder);
    const r = await report(file, { ...OPTIONS, exact: false }, quiet);
    assert.equal(r.format, 'onnx');
    assert.equal(r.storage, 'ONNX, external data in 1 file');
    const expected = weights.filter((w) => w.shape.length >= 2);
    assert.deepEqual(
      r.tensors.map((t) => t.name),
      expected.map((w) => w.name),
    );
    assert.deepEqual(r.skipped, ['conv.bias', 'steps']);
    for (const row of r.tensors) {
      const w = weights.find((x) => x.name === row.name)!;
      assert.equal(row.dim, row.name === 'deconv.weight' ? 1 : 0, `${row.name}: dim`);
      assert.equal(row.dtype, { 1: 'FLOAT', 10: 'FLOAT16', 11: 'DOUBLE', 16: 'BFLOAT16' }[w.dataType]);
      assertClose(
        row.sigma!,
        exactSpectralNorm(w.values, w.shape, { dim: row.dim! }),
        { rtol: w.dataType === DataType.DOUBLE ? 1e-8 : 2e-6, atol: 0 },
        `${row.name} (${w.storage})`,
      );
    }
  });

  it('normalize changes only the selected initializers: σ = 1 each, and the rest of the model decodes the same', async () => {
    const { file, weights } = writeOnnx(folder);
    const out = path.join(folder, 'out', 'normalized.onnx');
    const n = await normalize(file, { ...OPTIONS, output: out, inPlace: false, target: 1, clip: false }, quiet, quiet);
    const selected = weights.filter((w) => w.shape.length >= 2).map((w) => w.name);
    assert.deepEqual(
      n.tensors.map((t) => [t.name, t.action]),
      selected.map((name) => [name, 'normalized']),
    );
    assert.deepEqual(listing(path.dirname(out)), ['normalized.onnx', 'weights.bin']);
    const after = initializerValues(out);
    for (const name of selected) {
      const a = after.get(name)!;
      assertUnitSigma(a.values, a.shape, name === 'deconv.weight' ? 1 : 0, a.dataType, `σ of ${name} after normalize`);
    }
    // Everything but the selected data, graph, nodes, metadata, doc strings, bias and int64 tensor included.
    assert.deepEqual(withoutData(out, selected), withoutData(file, selected));
    assert.deepEqual(after.get('conv.bias'), initializerValues(file).get('conv.bias'));
    // The external file: only the two tensors' ranges changed; the padding around them is as it was.
    const before = fs.readFileSync(path.join(folder, 'weights.bin'));
    const written = fs.readFileSync(path.join(path.dirname(out), 'weights.bin'));
    assert.equal(written.length, before.length);
    const changed = [
      [64, 64 + 512 * 5 * 4],
      [64 + 512 * 5 * 4 + 8, 64 + 512 * 5 * 4 + 8 + 9 * 4 * 2],
    ];
    for (let i = 0; i < before.length; i++) {
      if (changed.some(([a, b]) => i >= a && i < b)) continue;
      assert.equal(written[i], before[i], `weights.bin byte ${i}`);
    }
  });

  it('normalize --clip: every float16, bfloat16, float and double initializer written has exact σ ≤ the target', async () => {
    const { file, weights } = writeOnnx(folder);
    const out = path.join(folder, 'out', 'clipped.onnx');
    // A target below every σ here (entries of ±0.5 or ±3), so that each dtype's rounding of W/σ is exercised.
    const target = 0.25;
    const n = await normalize(file, { ...OPTIONS, output: out, inPlace: false, target, clip: true }, quiet, quiet);
    const selected = weights.filter((w) => w.shape.length >= 2);
    const after = initializerValues(out);
    for (const w of selected) {
      const row = n.tensors.find((t) => t.name === w.name)!;
      const dim = w.name === 'deconv.weight' ? 1 : 0;
      assert.ok(exactSpectralNorm(w.values, w.shape, { dim }) > target, `${w.name}: the fixture's σ must exceed the target`);
      assert.equal(row.action, 'normalized', w.name);
      const a = after.get(w.name)!;
      assert.equal(a.dataType, w.dataType, `${w.name} keeps its dtype`);
      const exact = exactSpectralNorm(a.values, a.shape, { dim });
      assert.ok(exact <= target, `${w.name} (dtype ${w.dataType}, ${w.storage}): exact σ after --clip is ${exact}, above ${target}`);
    }
  });

  it('raw_data and external tensors are replaced in place: every other byte of both files is identical', async () => {
    const { file } = writeOnnx(folder);
    const out = path.join(folder, 'out', 'model.onnx');
    await normalize(
      file,
      { ...OPTIONS, include: [/^conv\.|^half\.|^fc\./], output: out, inPlace: false, target: 1, clip: false },
      quiet,
      quiet,
    );
    const input = fs.readFileSync(file);
    const output = fs.readFileSync(out);
    assert.equal(output.length, input.length);
    const model = onnx.ModelProto.decode(input);
    // The raw_data of conv.weight and half.weight are the only differences: find them in the file by content.
    const ranges = ['conv.weight', 'half.weight'].map((name) => {
      const raw = Buffer.from(model.graph.initializer.find((t: { name: string }) => t.name === name).rawData);
      const at = input.indexOf(raw);
      assert.ok(at > 0);
      return [at, at + raw.length];
    });
    let differing = 0;
    for (let i = 0; i < input.length; i++) {
      if (input[i] === output[i]) continue;
      assert.ok(
        ranges.some(([a, b]) => i >= a && i < b),
        `byte ${i} of the .onnx changed outside the selected raw_data`,
      );
      differing++;
    }
    assert.ok(differing > 0);
    // Only external tensors selected: the .onnx is byte-identical.
    const out2 = path.join(folder, 'out2', 'model.onnx');
    await normalize(file, { ...OPTIONS, include: [/^fc\./], output: out2, inPlace: false, target: 1, clip: false }, quiet, quiet);
    assert.ok(fs.readFileSync(out2).equals(input));
  });

  it('--in-place replaces the files that change, atomically, and leaves nothing else behind', async () => {
    const { file } = writeOnnx(folder);
    const inode = fs.statSync(file).ino;
    const external = path.join(folder, 'weights.bin');
    const externalInode = fs.statSync(external).ino;
    await normalize(file, { ...OPTIONS, include: [/^fc\./], output: file, inPlace: true, target: 1, clip: false }, quiet, quiet);
    assert.equal(fs.statSync(file).ino, inode, 'the .onnx, unchanged, is not rewritten');
    assert.notEqual(fs.statSync(external).ino, externalInode, 'the external file is replaced by a rename');
    assert.deepEqual(listing(folder), ['model.onnx', 'weights.bin']);
    const fc = initializerValues(file).get('fc.weight')!;
    assertUnitSigma(fc.values, fc.shape, 0, DataType.FLOAT, 'σ of fc.weight in place');
    await assert.rejects(
      () => normalize(file, { ...OPTIONS, output: path.join(folder, 'other.onnx'), inPlace: false, target: 1, clip: false }, quiet, quiet),
      /would overwrite the input .*weights\.bin/,
    );
  });

  it('the output passes onnx.checker (full check) and numpy agrees that σ = 1 (Debian python3-onnx)', async function () {
    const python = pythonOnnx();
    if ('reason' in python) {
      console.log(`      skipped: ${python.reason}`);
      this.skip();
    }
    for (const embedOnly of [false, true]) {
      const sub = path.join(folder, embedOnly ? 'embedded' : 'external');
      fs.mkdirSync(sub);
      const { file, weights } = writeOnnx(sub, { embedOnly });
      const out = path.join(sub, 'out', 'model.onnx');
      await normalize(file, { ...OPTIONS, output: out, inPlace: false, target: 1, clip: false }, quiet, quiet);
      const dims = Object.fromEntries(weights.filter((w) => w.shape.length >= 2).map((w) => [w.name, w.name === 'deconv.weight' ? 1 : 0]));
      for (const model of [file, out]) {
        const r: { status: number | null; stdout: string; stderr: string } = spawnSync(
          python.python,
          ['-c', CHECK_SCRIPT, model, JSON.stringify(dims)],
          { encoding: 'utf8' },
        );
        assert.equal(r.status, 0, `onnx.checker on ${model}: ${r.stderr}`);
        if (model !== out) continue;
        const sigmas = JSON.parse(r.stdout);
        for (const w of weights.filter((x) => x.name in dims)) {
          const slack = UNIT_ROUNDOFF[w.dataType] * 10 + 2e-6;
          assertClose(sigmas[w.name], 1, { rtol: slack, atol: 0 }, `numpy σ of ${w.name} (${embedOnly ? 'embedded' : w.storage})`);
        }
      }
    }
  });
});

/** Rewrites model.onnx through onnx-proto with `edit` applied to the decoded message. */
function editOnnx(file: string, edit: (model: any) => void): void {
  const model = onnx.ModelProto.decode(fs.readFileSync(file));
  edit(model);
  fs.writeFileSync(file, onnx.ModelProto.encode(model).finish());
}

const byName = (model: any, name: string) => model.graph.initializer.find((t: { name: string }) => t.name === name);

const BAD: { what: string; damage: (folder: string, file: string) => void; message: RegExp; tensor?: string }[] = [
  {
    what: 'a truncated protobuf',
    damage: (_f, file) => fs.truncateSync(file, fs.statSync(file).size - 300),
    message: /truncated or invalid protobuf: field \d+ of .* runs past the end/,
  },
  {
    what: 'not protobuf at all',
    damage: (_f, file) => fs.writeFileSync(file, 'this is text, not a model'),
    message: /invalid protobuf|truncated or invalid protobuf|not an ONNX model/,
  },
  {
    what: 'raw_data whose byte length does not match the dims',
    damage: (_f, file) => editOnnx(file, (m) => (byName(m, 'conv.weight').dims = [4, 3, 3, 2])),
    message: /byte length mismatch: dims \[4, 3, 3, 2\] of FLOAT need 288 bytes but raw_data holds 432/,
    tensor: 'conv.weight',
  },
  {
    what: 'typed data whose element count does not match the dims',
    damage: (_f, file) => editOnnx(file, (m) => byName(m, 'deconv.weight').floatData.pop()),
    message: /element count mismatch: dims \[4, 2, 2, 2\] need 32 elements but its typed data holds 31/,
    tensor: 'deconv.weight',
  },
  {
    what: 'external data past the end of its file',
    damage: (folder) => fs.truncateSync(path.join(folder, 'weights.bin'), 5000),
    message: /external data past the end of 'weights\.bin': bytes 64\.\.10304 of a 5000-byte file/,
    tensor: 'fc.weight',
  },
  {
    what: 'a missing external data file',
    damage: (folder) => fs.rmSync(path.join(folder, 'weights.bin')),
    message: /missing or unreadable external data 'weights\.bin': ENOENT/,
    tensor: 'fc.weight',
  },
  {
    what: 'an external data location outside the model folder',
    damage: (_f, file) => editOnnx(file, (m) => (byName(m, 'fc.weight').externalData[0].value = '../weights.bin')),
    message: /external data location '\.\.\/weights\.bin' must be relative, inside the model's folder/,
    tensor: 'fc.weight',
  },
  {
    what: 'two initializers of one name',
    damage: (_f, file) => editOnnx(file, (m) => (byName(m, 'half.weight').name = 'conv.weight')),
    message: /two initializers have this name/,
    tensor: 'conv.weight',
  },
];

describe('CLI: bad ONNX models', () => {
  for (const c of BAD) {
    it(`${c.what}: a one-line error, and nothing written`, async () => {
      const folder = temporaryFolder();
      try {
        const { file } = writeOnnx(folder);
        c.damage(folder, file);
        const before = listing(folder);
        const check = (error: unknown) => {
          assert.ok(error instanceof ModelFileError, String(error));
          assert.ok(!error.message.includes('\n'));
          assert.ok(error.message.startsWith(`${file}: `), error.message);
          if (c.tensor) assert.ok(error.message.includes(`tensor '${c.tensor}': `), error.message);
          assert.match(error.message, c.message);
          return true;
        };
        await assert.rejects(() => report(file, { ...OPTIONS, exact: false }, quiet), check);
        const out = path.join(folder, 'out', 'model.onnx');
        await assert.rejects(
          () => normalize(file, { ...OPTIONS, output: out, inPlace: false, target: 1, clip: false }, quiet, quiet),
          check,
        );
        await assert.rejects(
          () => normalize(file, { ...OPTIONS, output: file, inPlace: true, target: 1, clip: false }, quiet, quiet),
          check,
        );
        assert.deepEqual(listing(folder), before, 'nothing written, not even the output folder');
      } finally {
        fs.rmSync(folder, { recursive: true, force: true });
      }
    });
  }

  it('an unsupported dtype (float8) is a skipped row, not an error, and its bytes are copied', async () => {
    const folder = temporaryFolder();
    try {
      const { file } = writeOnnx(folder, { embedOnly: true });
      editOnnx(file, (m) =>
        m.graph.initializer.push({
          name: 'f8.weight',
          dims: [4, 4],
          dataType: DataType.FLOAT8E4M3FN,
          rawData: new Uint8Array(16).fill(0x38),
        }),
      );
      const r = await report(file, { ...OPTIONS, exact: false }, quiet);
      const row = r.tensors.find((t) => t.name === 'f8.weight')!;
      assert.deepEqual(
        [row.status, row.note, row.sigma, row.dtype],
        ['skipped', 'skipped: unsupported dtype FLOAT8E4M3FN', null, 'FLOAT8E4M3FN'],
      );
      assert.equal(r.totals.skipped, 1);
      const out = path.join(folder, 'out', 'model.onnx');
      const n = await normalize(file, { ...OPTIONS, output: out, inPlace: false, target: 1, clip: false }, quiet, quiet);
      assert.deepEqual(
        n.tensors.filter((t) => t.action === 'skipped').map((t) => [t.name, t.actionText]),
        [['f8.weight', 'skipped: unsupported dtype FLOAT8E4M3FN']],
      );
      assert.deepEqual(Array.from(byName(onnx.ModelProto.decode(fs.readFileSync(out)), 'f8.weight').rawData), new Array(16).fill(0x38));
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
