// The spectral-norm command as a child process: help, exit codes, --json on a clean stdout, one-line errors; and a
// real TF.js model shipped in an npm package (@vladmandic/face-api's tiny face detector, uint8-quantized).
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';
import { main } from '../../cli/main';
import { type FloatArray, backendInfo, exactSpectralNorm } from '../../lib';
import { temporaryFolder, tensorOf, writeSafetensors } from '../support/cli-fixtures';
import { assertClose } from '../support/helpers';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const FACE_API = path.join(ROOT, 'node_modules', '@vladmandic', 'face-api', 'model');

/** The command as a child process: real exit codes and streams (no progress bar, as stderr is a pipe). */
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same entry point in this process, which is much faster for the many help and usage cases. */
async function runHere(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await main(args, { out: (t) => (stdout += t), err: (t) => (stderr += t) });
  return { status, stdout, stderr };
}

describe('CLI: the command', () => {
  let folder: string;
  before(() => {
    folder = temporaryFolder();
  });
  after(() => fs.rmSync(folder, { recursive: true, force: true }));

  it('--help on every command, with exit code 0', async () => {
    const top = run('--help');
    assert.equal(top.status, 0);
    assert.match(top.stdout, /Usage: spectral-norm \[options\] \[command\]/);
    for (const command of ['report', 'normalize', 'info']) assert.match(top.stdout, new RegExp(`\\n  ${command} `));
    const expected: Record<string, string[]> = {
      report: [
        '<model>',
        '--exact',
        '--json',
        '--include <regex>',
        '--exclude <regex>',
        '--dim <[regex=]n>',
        '--backend <name>',
        '--threads <n>',
      ],
      normalize: [
        '<model>',
        '-o, --output <path>',
        '--device <n|all>',
        '--in-place',
        '--target',
        '--clip',
        '--json',
        '--include <regex>',
        '--dim <[regex=]n>',
      ],
      info: ['--json'],
    };
    for (const [command, options] of Object.entries(expected)) {
      const help = await runHere(command, '--help');
      assert.equal(help.status, 0, command);
      assert.match(help.stdout, new RegExp(`^Usage: spectral-norm ${command} \\[options\\]`));
      for (const option of options) assert.ok(help.stdout.includes(option), `${command} --help mentions ${option}`);
    }
  });

  it('report --json writes one JSON document to stdout and nothing to stderr', () => {
    const file = writeSafetensors(folder, 'json.safetensors', [
      tensorOf('w1', 'F32', [9, 4]),
      tensorOf('b1', 'F32', [9]),
      tensorOf('w2', 'BF16', [3, 9]),
    ]);
    const r = run('report', file, '--json', '--backend', 'js', '--threads', '1');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress bar or notes outside a terminal');
    const json = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(json).sort(), [
      'backend',
      'file',
      'format',
      'method',
      'skipped',
      'storage',
      'tensors',
      'tolerance',
      'totals',
    ]);
    assert.equal(json.backend, 'js');
    assert.equal(json.format, 'safetensors');
    assert.deepEqual(json.skipped, ['b1']);
    for (const t of json.tensors) {
      assert.deepEqual(Object.keys(t).sort(), [
        'backend',
        'converged',
        'device',
        'dim',
        'dtype',
        'iterations',
        'ms',
        'name',
        'note',
        'shape',
        'sigma',
        'status',
      ]);
      assert.ok(typeof t.sigma === 'number' && t.sigma > 0 && Number.isInteger(t.iterations) && t.ms >= 0);
      assert.deepEqual([t.status, t.note, t.backend, t.device], ['ok', '', 'js', null]);
    }
    assert.deepEqual(Object.keys(json.totals).sort(), [
      'bytes',
      'megabytesPerSecond',
      'ms',
      'nonFinite',
      'sigmaProduct',
      'sigmaProductLog10',
      'sigmaProductMeaning',
      'skipped',
      'tensors',
      'wallMs',
    ]);
    assert.equal(json.totals.bytes, 9 * 4 * 4 + 3 * 9 * 2);
    assert.match(json.totals.sigmaProductMeaning, /Lipschitz upper bound for a plain feed-forward chain/);
  });

  it('the human report ends with the totals and the product of σ, labelled for what it is', () => {
    const file = writeSafetensors(folder, 'text.safetensors', [tensorOf('w1', 'F32', [9, 4]), tensorOf('w2', 'F64', [3, 9])]);
    const r = run('report', file, '--exact');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /σ by exactSpectralNorm/);
    assert.match(lines[2], /^tensor\s+shape\s+dtype\s+dim\s+σ\s+iters\s+ms$/);
    assert.match(lines[3], /^w1\s+\[9, 4\]\s+F32\s+0\s+[\d.]+\s+-\s+[\d.]+$/);
    assert.match(lines.at(-2)!, /^2 tensors reported, 0 not selected; [\d.]+ kB read; σ time [\d.]+ ms, total [\d.]+ ms \(\d+ MB\/s\)$/);
    assert.match(
      lines.at(-1)!,
      /^product of σ: a Lipschitz upper bound for a plain feed-forward chain of these layers with 1-Lipschitz activations, and nothing more: [\d.e+-]+$/,
    );
  });

  it('normalize --json and info --json', async () => {
    const file = writeSafetensors(folder, 'n.safetensors', [tensorOf('w', 'F16', [6, 5], 3)]);
    const output = path.join(folder, 'n-out.safetensors');
    const r = run('normalize', file, '-o', output, '--json', '--target', '0.5');
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.output, output);
    assert.equal(json.totals.changed, 1);
    assert.equal(json.tensors[0].action, 'normalized');
    assert.equal(json.tensors[0].actionText, 'normalized');
    assert.ok(fs.existsSync(output));
    assert.match((await runHere('info')).stdout, /^backends available: /);
    const info = run('info', '--json');
    assert.equal(info.status, 0);
    assert.ok(JSON.parse(info.stdout).available.includes('js'));
  });

  it('errors: one line on stderr in one style, `spectral-norm: <what>`; exit code 1 for the model, 2 for the command line', async () => {
    const bad = path.join(folder, 'bad.safetensors');
    fs.writeFileSync(bad, Buffer.from('not a model at all, just text'));
    const good = writeSafetensors(folder, 'good.safetensors', [tensorOf('w', 'F32', [4, 3]), tensorOf('b', 'F32', [4])]);
    const cases: [string[], number, RegExp][] = [
      [['report', bad], 1, /^spectral-norm: .*bad\.safetensors: header length \d+ is absurd/],
      [['report', bad, '--json'], 1, /^spectral-norm: .*bad\.safetensors: header length/],
      [
        ['report', path.join(folder, 'missing.safetensors')],
        1,
        /^spectral-norm: .*missing\.safetensors: cannot open: ENOENT: no such file or directory$/,
      ],
      [['normalize', bad], 2, /^spectral-norm: normalize needs exactly one of -o <path> and --in-place$/],
      [['normalize', bad, '-o', 'x', '--in-place'], 2, /^spectral-norm: normalize needs exactly one of -o <path> and --in-place$/],
      [
        ['report', bad, '--threads', '0'],
        2,
        /^spectral-norm: option '--threads <n>' argument '0' is invalid\. must be a positive integer \(see --help\)$/,
      ],
      [
        ['report', bad, '--backend', 'gpu'],
        2,
        /^spectral-norm: option '--backend <name>' argument 'gpu' is invalid\. Allowed choices are auto, cpu, cuda, js\. \(see --help\)$/,
      ],
      [['report', bad, '--dim', 'conv=x'], 2, /^spectral-norm: option .* argument 'conv=x' is invalid\. --dim must be N or REGEX=N/],
      [
        ['report', bad, '--include', '(('],
        2,
        /^spectral-norm: option .* argument '\(\(' is invalid\. --include '\(\(' is not a valid regular expression/,
      ],
      [
        ['report', bad, '--device', 'gpu0'],
        2,
        /^spectral-norm: option '--device <n\|all>' argument 'gpu0' is invalid\. --device must be a GPU index/,
      ],
      [
        ['report', good, '--backend', 'cpu', '--device', 'all'],
        2,
        /^spectral-norm: --device applies only to the cuda backend \(or auto\), but --backend is cpu$/,
      ],
      [['normalize', bad, '-o', 'x', '--target', '-1'], 2, /^spectral-norm: option '--target <σ>' argument '-1' is invalid/],
      [['report', bad, '--no-such-option'], 2, /^spectral-norm: unknown option '--no-such-option' \(see --help\)$/],
      [['report'], 2, /^spectral-norm: missing required argument 'model' \(see --help\)$/],
      [['frobnicate'], 2, /^spectral-norm: unknown command 'frobnicate' \(see --help\)$/],
      [
        ['report', good, '--include', '^nothing$'],
        2,
        /^spectral-norm: .*good\.safetensors: no tensor to compute on: --include '\^nothing\$' matches none of its 1 floating-point tensors of rank ≥ 2 \(of 2 in all\)$/,
      ],
      [
        ['normalize', good, '-o', path.join(folder, 'none.safetensors'), '--exclude', '.'],
        2,
        /^spectral-norm: .*no tensor to compute on: --exclude '\.' matches none/,
      ],
    ];
    for (const backend of ['cpu', 'cuda'] as const) {
      if (!backendInfo().available.includes(backend))
        cases.push([
          ['report', bad, '--backend', backend],
          2,
          new RegExp(`^spectral-norm: --backend ${backend} is unavailable on this machine: `),
        ]);
    }
    for (const [args, code, message] of cases) {
      const r = await runHere(...args);
      assert.equal(r.status, code, `${args.join(' ')}: exit code`);
      assert.equal(r.stdout, '', `${args.join(' ')}: stdout stays clean`);
      assert.match(r.stderr, /^[^\n]*\n$/, `${args.join(' ')}: exactly one line`);
      assert.match(r.stderr.trimEnd(), message, args.join(' '));
    }
    assert.ok(!fs.existsSync(path.join(folder, 'none.safetensors')), 'an empty selection writes nothing');
    // Through a real process: the exit codes, and an error is exactly one line.
    const r = run('report', bad);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^spectral-norm: .*bad\.safetensors: header length \d+ is absurd[^\n]*\n$/);
    const usage = run('report', bad, '--no-such-option');
    assert.equal(usage.status, 2);
    assert.equal(usage.stderr, "spectral-norm: unknown option '--no-such-option' (see --help)\n");
    const empty = run('report', good, '--include', 'zzz');
    assert.equal(empty.status, 2);
    assert.equal(empty.stdout, '');
  });

  it('-o creates the folders it needs, and an output error names the output, never the temporary file', async () => {
    const file = writeSafetensors(folder, 'o.safetensors', [tensorOf('w', 'F32', [5, 4])]);
    const output = path.join(folder, 'new', 'deeper', 'out.safetensors');
    const r = run('normalize', file, '-o', output);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fs.readdirSync(path.dirname(output)), ['out.safetensors']);
    // A folder that cannot be created (a file stands in the way): one line naming the output, exit 1.
    const blocked = path.join(file, 'sub', 'out.safetensors');
    const e = run('normalize', file, '-o', blocked);
    assert.equal(e.status, 1);
    assert.equal(e.stderr, `spectral-norm: ${blocked}: cannot create its folder: ENOTDIR: not a directory\n`);
    assert.doesNotMatch(e.stderr, /\.tmp/);
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${signal} during normalize removes the temporary output and ends the process by that signal`, async function () {
      this.timeout(120000);
      // Slow on purpose: many tensors on the pure-JS backend, each to the iteration limit.
      const tensors = Array.from({ length: 60 }, (_, i) => tensorOf(`layer${i}.weight`, 'F32', [128, 128]));
      const file = writeSafetensors(folder, `slow-${signal}.safetensors`, tensors);
      const outFolder = path.join(folder, `out-${signal}`);
      const child = spawn(process.execPath, [
        CLI,
        'normalize',
        file,
        '-o',
        path.join(outFolder, 'out.safetensors'),
        '--backend',
        'js',
        '--tolerance',
        '0',
        '--max-iterations',
        '5000',
      ]);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      const temporary = () => (fs.existsSync(outFolder) ? fs.readdirSync(outFolder).filter((n) => n.endsWith('.tmp')) : []);
      while (temporary().length === 0) {
        assert.equal(child.exitCode, null, 'the command ended before its temporary file appeared');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      child.kill(signal);
      const end = await exited;
      assert.deepEqual(end, { code: null, signal }, 'dies of the same signal: the shell sees 128 + its number');
      assert.ok(!fs.existsSync(outFolder), 'no temporary file, no output, and not the folder created for it');
    });
  }

  it('the package bin points at the compiled CLI, which starts with a shebang', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.bin['spectral-norm'], 'dist/cli/main.js');
    assert.ok(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'));
    assert.ok(pkg.files.includes('dist/cli'));
  });
});

/** The weights of a tfjs manifest decoded here, independently of the CLI: uint8 q → q·scale + min, float32 as is. */
function decodeManifest(file: string): Map<string, { shape: number[]; values: Float32Array; quantized: boolean }> {
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  const result = new Map();
  for (const group of manifest) {
    const data = Buffer.concat(group.paths.map((p: string) => fs.readFileSync(path.join(path.dirname(file), p))));
    let offset = 0;
    for (const w of group.weights) {
      const n = w.shape.reduce((a: number, b: number) => a * b, 1);
      let values: Float32Array;
      if (w.quantization) {
        assert.equal(w.quantization.dtype, 'uint8');
        values = Float32Array.from(data.subarray(offset, offset + n), (q) => q * w.quantization.scale + w.quantization.min);
        offset += n;
      } else {
        values = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + 4 * n));
        offset += 4 * n;
      }
      result.set(w.name, { shape: w.shape, values, quantized: Boolean(w.quantization) });
    }
  }
  return result;
}

describe('CLI: a real TF.js model from npm (@vladmandic/face-api, tiny face detector)', () => {
  const manifest = path.join(FACE_API, 'tiny_face_detector_model-weights_manifest.json');
  const quiet = () => undefined;
  const options = { include: [], exclude: [], dims: [], backend: 'auto' as const, tolerance: 1e-9, maxIterations: 5000, json: false };

  it('report through the command lists every kernel, dequantized, with σ as exactSpectralNorm gives it', async () => {
    const r = spawnSync(process.execPath, [CLI, 'report', manifest, '--exact', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const weights = decodeManifest(manifest);
    const kernels = [...weights].filter(([, w]) => w.shape.length >= 2).map(([name]) => name);
    assert.deepEqual(
      json.tensors.map((t: { name: string }) => t.name),
      kernels,
    );
    assert.equal(json.tensors.length, 12);
    for (const t of json.tensors) {
      const w = weights.get(t.name)!;
      assert.equal(t.dim, w.shape.length - 1, 'Keras layout: the last axis');
      assert.equal(t.dtype, 'float32 (uint8-quantized)');
      assertClose(t.sigma, exactSpectralNorm(w.values, w.shape, { dim: -1 }), { rtol: 1e-12, atol: 0 }, t.name);
    }
    const estimated = await report(manifest, { ...options, exact: false }, quiet);
    estimated.tensors.forEach((t, i) =>
      assertClose(t.sigma!, json.tensors[i].sigma, { rtol: 2e-6, atol: 0 }, `power iteration vs exact, ${t.name}`),
    );
  });

  it('normalize writes float32 kernels with σ = 1 and keeps the quantized biases byte for byte', async () => {
    const out = temporaryFolder();
    try {
      const output = path.join(out, path.basename(manifest));
      const notes: string[] = [];
      const n = await normalize(manifest, { ...options, output, inPlace: false, target: 1, clip: false }, quiet, (t) => notes.push(t));
      assert.equal(n.totals.changed, 12);
      assert.match(notes.join(''), /12 quantized or float16 weight\(s\) were written as float32/);
      const before = decodeManifest(manifest);
      const after = JSON.parse(fs.readFileSync(output, 'utf8'));
      const data = Buffer.concat(after[0].paths.map((p: string) => fs.readFileSync(path.join(out, p))));
      const original = fs.readFileSync(path.join(FACE_API, 'tiny_face_detector_model.bin'));
      let offset = 0;
      let originalOffset = 0;
      for (const w of after[0].weights) {
        const n = w.shape.reduce((a: number, b: number) => a * b, 1);
        const b = before.get(w.name)!;
        if (w.shape.length >= 2) {
          assert.equal(w.quantization, undefined, `${w.name} is float32 now`);
          const values = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + 4 * n));
          assertClose(exactSpectralNorm(values as FloatArray, w.shape, { dim: -1 }), 1, { rtol: 1e-5, atol: 0 }, `σ of ${w.name}`);
          offset += 4 * n;
        } else {
          assert.deepEqual(
            w.quantization,
            JSON.parse(fs.readFileSync(manifest, 'utf8'))[0].weights.find((x: { name: string }) => x.name === w.name).quantization,
          );
          assert.ok(
            data.subarray(offset, offset + n).equals(original.subarray(originalOffset, originalOffset + n)),
            `${w.name} byte-identical`,
          );
          offset += n;
        }
        originalOffset += b.quantized ? n : 4 * n;
      }
      assert.equal(offset, data.length);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
