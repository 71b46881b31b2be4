// Certified σ in the commands (issue 14): report --conv-input (the operator norm of each 4-D tensor as a
// convolution, in the format's layout, with its certified upper bound), report --certify ([lower, upper] of every
// tensor), and normalize --clip, whose output has exact σ ≤ target, checked with exactSpectralNorm.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { type NormalizeOptions, normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';
import { main } from '../../cli/main';
import { encodeBfloat16, encodeFloat16 } from '../../cli/formats/half';
import { convSpectralNorm, exactSpectralNorm } from '../../lib';
import { openModel } from '../../cli/open-model';
import { reportOptions, temporaryFolder, tensorOf, writeSafetensors, writeTfjs } from '../support/cli-fixtures';
import { gaussian } from '../support/helpers';

const quiet = () => undefined;

function normalizeOptions(output: string, overrides: Partial<NormalizeOptions> = {}): NormalizeOptions {
  const { exact: _exact, ...common } = reportOptions({ tolerance: 1e-6, maxIterations: 1000 });
  return { ...common, output, inPlace: false, target: 1, clip: true, json: false, ...overrides };
}

async function valuesOf(file: string): Promise<Map<string, { values: Float32Array | Float64Array; shape: number[]; dtype: string }>> {
  const model = await openModel(file);
  const out = new Map();
  try {
    for (const t of model.tensors) if (t.numeric) out.set(t.name, { values: await model.read(t), shape: t.shape, dtype: t.dtype });
  } finally {
    await model.close();
  }
  return out;
}

/** U·diag(s)·Vᵀ, m × n, with random orthonormal U and V. */
function withSpectrum(m: number, n: number, s: number[]): Float64Array {
  const basis = (k: number) => {
    const q: number[][] = [];
    for (let j = 0; j < k; j++) {
      let v = Array.from({ length: k }, () => gaussian());
      for (const b of q) {
        const d = v.reduce((sum, x, i) => sum + x * b[i], 0);
        v = v.map((x, i) => x - d * b[i]);
      }
      const norm = Math.hypot(...v);
      q.push(v.map((x) => x / norm));
    }
    return q;
  };
  const u = basis(m);
  const v = basis(n);
  const w = new Float64Array(m * n);
  s.forEach((value, k) => {
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[i * n + j] += u[k][i] * value * v[k][j];
  });
  return w;
}

function encoded(name: string, dtype: 'F32' | 'F64' | 'F16' | 'BF16', shape: number[], values: Float64Array) {
  if (dtype === 'F64') return { name, dtype, shape, data: new Uint8Array(values.buffer) };
  const f32 = Float32Array.from(values);
  const data = dtype === 'F32' ? new Uint8Array(f32.buffer) : dtype === 'F16' ? encodeFloat16(f32) : encodeBfloat16(f32);
  return { name, dtype, shape, data };
}

describe('CLI: certified σ', () => {
  let folder: string;
  beforeEach(() => {
    folder = temporaryFolder();
  });
  afterEach(() => fs.rmSync(folder, { recursive: true, force: true }));

  it("report --conv-input: the operator σ of every 4-D tensor in the format's layout, with its certified bound", async () => {
    const conv = tensorOf('conv.weight', 'F32', [6, 4, 3, 3], 0.3);
    const shortcut = tensorOf('shortcut.weight', 'F32', [6, 4, 1, 1]);
    const file = writeSafetensors(folder, 'model.safetensors', [conv, tensorOf('fc.weight', 'F32', [5, 7]), shortcut]);
    const r = await report(file, reportOptions({ json: true, convInput: [10, 8], padding: 1 }), quiet);
    const row = r.tensors.find((t) => t.name === 'conv.weight')!;
    const expected = convSpectralNorm(conv.values as Float32Array, [6, 4, 3, 3], {
      inputSize: [10, 8],
      padding: 1,
      tolerance: 1e-9,
      maxIterations: 5000,
    });
    assert.ok(row.operator?.sigma !== undefined && row.operator.upper !== undefined);
    assert.ok(Math.abs(row.operator.sigma - expected.sigma) <= 1e-6 * expected.sigma);
    assert.equal(row.operator.upper, expected.upper);
    assert.ok(row.operator.lower! <= row.operator.sigma && row.operator.sigma <= row.operator.upper);
    assert.equal(r.tensors.find((t) => t.name === 'fc.weight')!.operator, undefined, 'a 2-D tensor has no operator column');
    // A 1×1 kernel cannot take padding 1: that tensor says why, the others still get their columns.
    assert.match(
      r.tensors.find((t) => t.name === 'shortcut.weight')!.operator!.error!,
      /^--padding \[1, 1\] must be less than the kernel's size \[1, 1\]/,
    );
    const same = await report(file, reportOptions({ json: true, convInput: [10, 8], padding: 'same' }), quiet);
    assert.equal(
      same.tensors.find((t) => t.name === 'shortcut.weight')!.operator!.method,
      'fft',
      "--padding same: a 1×1 kernel's padding is 0",
    );
    assert.equal(same.tensors.find((t) => t.name === 'conv.weight')!.operator!.upper, expected.upper);

    // The same kernels in a TF.js model are [kh, kw, cin, cout]: the same operator, the same σ.
    const { file: tfjs, values } = writeTfjs(folder, [{ name: 'conv/kernel', shape: [3, 3, 4, 6], dtype: 'float32' }]);
    const hwio = values.get('conv/kernel') as Float32Array;
    const t = await report(tfjs, reportOptions({ json: true, convInput: [10, 8], padding: 1, paddingMode: 'circular' }), quiet);
    const viaApi = convSpectralNorm(hwio, [3, 3, 4, 6], { inputSize: [10, 8], padding: 1, paddingMode: 'circular', layout: 'hwio' });
    assert.equal(t.tensors[0].operator!.method, 'fft');
    assert.ok(Math.abs(t.tensors[0].operator!.sigma! - viaApi.sigma) <= 1e-12 * viaApi.sigma);

    let text = '';
    await report(file, reportOptions({ convInput: [10, 8], padding: 1 }), (s) => (text += s));
    assert.match(text, /operator σ: each 4-D tensor as a convolution on a 10×8 input/);
    assert.match(text, /shortcut\.weight: no operator σ: --padding/);
  });

  it('report --certify: [lower, upper] brackets the exact σ of every tensor', async () => {
    const tensors = [
      tensorOf('a', 'F32', [9, 14]),
      tensorOf('b', 'F16', [5, 3, 3, 3], 0.2),
      tensorOf('c', 'F64', [20, 6], 1e-3),
      tensorOf('d', 'BF16', [12]),
    ];
    const file = writeSafetensors(folder, 'm.safetensors', tensors);
    const r = await report(file, reportOptions({ json: true, certify: true, include: [/.*/] }), quiet);
    const stored = await valuesOf(file);
    for (const row of r.tensors) {
      const { values, shape } = stored.get(row.name)!;
      const exact = exactSpectralNorm(values, shape, { dim: row.dim! });
      assert.ok(
        row.certified!.lower <= exact * (1 + 1e-12) && exact * (1 - 1e-12) <= row.certified!.upper,
        `${row.name}: [${row.certified!.lower}, ${row.certified!.upper}] vs ${exact}`,
      );
      assert.ok(row.certified!.upper / row.certified!.lower - 1 <= 1e-6);
    }
  });

  it('normalize --clip: the exact σ of every tensor written is at most the target, whatever its dtype', async () => {
    const cases: ['F32' | 'F64' | 'F16' | 'BF16', number[]][] = [];
    for (const dtype of ['F32', 'F64', 'F16', 'BF16'] as const) {
      // Just above, far above, just below, and a top pair within 1e-4 of each other (slow power iteration).
      cases.push([dtype, [1 + 3e-5, 0.8, 0.3]], [dtype, [3, 1]], [dtype, [1 - 1e-6, 0.9]], [dtype, [1.0002, 1.0001, 1]]);
    }
    const tensors = cases.map(([dtype, spectrum], i) => encoded(`t${i}`, dtype, [16, 12], withSpectrum(16, 12, spectrum)));
    const file = writeSafetensors(folder, 'clip.safetensors', tensors);
    const output = path.join(folder, 'out.safetensors');
    const r = await normalize(file, normalizeOptions(output, { maxIterations: 20 }), quiet, quiet);
    const before = await valuesOf(file);
    const after = await valuesOf(output);
    for (const row of r.tensors) {
      const { values, shape, dtype } = after.get(row.name)!;
      const exact = exactSpectralNorm(values, shape);
      assert.ok(exact <= 1, `${row.name} (${dtype}): exact σ after --clip is ${exact}, above the target 1 (${row.actionText})`);
      const original = exactSpectralNorm(before.get(row.name)!.values, shape);
      if (original > 1) assert.equal(row.action, 'normalized', `${row.name}: σ ${original} > 1 must be changed`);
      if (row.action === 'normalized') {
        assert.ok(
          row.certifiedUpper! >= original * (1 - 1e-12),
          `${row.name}: the certified bound ${row.certifiedUpper} is below σ ${original}`,
        );
        // At most the worst case of the division's rounding below the target: 2u·‖W‖_F (u of the stored dtype).
        const u = { F32: 2 ** -24, F64: 2 ** -53, F16: 2 ** -11, BF16: 2 ** -8 }[dtype as 'F32']!;
        const frobenius = Math.hypot(...values);
        assert.ok(exact >= 1 - 2 * u * frobenius - 1e-6, `${row.name} (${dtype}): clipped to ${exact}, needlessly far below the target`);
      }
    }
  });

  it('normalize --clip keeps tensors whose σ is certified below the target byte for byte', async () => {
    const tensors = [
      encoded('low', 'F32', [8, 8], withSpectrum(8, 8, [0.5, 0.1])),
      encoded('tiny', 'F16', [4, 4], withSpectrum(4, 4, [1e-3])),
    ];
    const file = writeSafetensors(folder, 'keep.safetensors', tensors);
    const output = path.join(folder, 'out.safetensors');
    const r = await normalize(file, normalizeOptions(output), quiet, quiet);
    assert.deepEqual(
      r.tensors.map((t) => t.actionText),
      ['kept: σ ≤ target', 'kept: σ ≤ target'],
    );
    assert.deepEqual(fs.readFileSync(output), fs.readFileSync(file));
  });

  it('the flags: --stride, --padding and --padding-mode need --conv-input, and each is checked', async () => {
    const file = writeSafetensors(folder, 'm.safetensors', [tensorOf('w', 'F32', [3, 2, 3, 3])]);
    const run = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const status = await main(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
      return { status, stdout, stderr };
    };
    for (const flags of [
      ['--stride', '2'],
      ['--padding', '1'],
      ['--padding-mode', 'circular'],
    ]) {
      const r = await run('report', file, ...flags);
      assert.equal(r.status, 2, 'a usage error');
      assert.match(r.stderr, new RegExp(`^spectral-norm: ${flags[0]} describes the convolution of --conv-input, which is missing\n$`));
    }
    for (const [flag, value, message] of [
      ['--conv-input', '0x4', /--conv-input.*must be HxW with positive integers/],
      ['--conv-input', '8by8', /--conv-input.*must be HxW/],
      ['--stride', '0', /--stride.*must be a positive integer/],
      ['--padding', 'full', /--padding.*must be a non-negative integer or 'same'/],
      ['--padding-mode', 'reflect', /--padding-mode.*Allowed choices are zeros, circular/],
    ] as const) {
      const args = flag === '--conv-input' ? [flag, value] : ['--conv-input', '8x8', flag, value];
      const r = await run('report', file, ...args);
      assert.equal(r.status, 2, `${flag} ${value}: a usage error`);
      assert.match(r.stderr, /^spectral-norm: [^\n]*\n$/, 'one line');
      assert.match(r.stderr, message);
    }
    const ok = await run(
      'report',
      file,
      '--conv-input',
      '8x6',
      '--stride',
      '2',
      '--padding',
      '1',
      '--padding-mode',
      'circular',
      '--certify',
      '--json',
    );
    assert.equal(ok.status, 0, ok.stderr);
    const json = JSON.parse(ok.stdout);
    assert.equal(json.tensors[0].operator.method, 'fft');
    assert.ok(json.tensors[0].certified.lower > 0);
  });
});
