// `npm run bench:cli`: `spectral-norm report` on real model files, on every backend and with --exact, side by side
// in one run (rounds interleave the contenders, so machine noise hits them alike). Prints a table and writes
// bench/results/cli-report-<date>.json.
//
//   npm run bench:cli -- [--rounds 5] [--out bench/results]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { report } from '../cli/commands/report';
import { writeExampleModels } from '../examples/make-example-models';
import { type BackendChoice, backendInfo } from '../lib';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '5' }, out: { type: 'string', default: path.join('bench', 'results') } },
});
const rounds = Number(args.rounds);

const ROOT = path.resolve(__dirname, '..', '..');
const examples = writeExampleModels();
const faceApi = path.join(ROOT, 'node_modules', '@vladmandic', 'face-api', 'model');
const models = [
  { name: 'SNGAN ResNet D (examples/sngan-d.safetensors, F32, 1.05 M parameters)', file: examples.safetensors },
  { name: 'face-api tiny face detector (TF.js, uint8)', file: path.join(faceApi, 'tiny_face_detector_model-weights_manifest.json') },
  { name: 'face-api face recognition (TF.js, uint8, 6.4 MB)', file: path.join(faceApi, 'face_recognition_model-weights_manifest.json') },
].filter((m) => fs.existsSync(m.file));

const info = backendInfo();
const contenders: { name: string; backend: BackendChoice; threads?: number; exact: boolean }[] = [];
if (info.cpu.available) {
  contenders.push({ name: `cpu (${info.cpu.simd}, ${info.cpu.threads} threads)`, backend: 'cpu', exact: false });
  if (info.cpu.threads > 1) contenders.push({ name: `cpu (${info.cpu.simd}, 1 thread)`, backend: 'cpu', threads: 1, exact: false });
}
contenders.push({ name: 'js', backend: 'js', exact: false });
contenders.push({ name: 'exact (exactSpectralNorm, float64 JS)', backend: 'auto', exact: true });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const results = [];
  for (const model of models) {
    const sigmaMs: number[][] = contenders.map(() => []);
    const wallMs: number[][] = contenders.map(() => []);
    let tensors = 0;
    for (let round = 0; round < rounds; round++) {
      for (const [i, c] of contenders.entries()) {
        const options = { include: [], exclude: [], dims: [], backend: c.backend, threads: c.threads, tolerance: 1e-6, maxIterations: 1000, json: true, exact: c.exact };
        const r = await report(model.file, options, () => undefined);
        sigmaMs[i].push(r.totals.ms);
        wallMs[i].push(r.totals.wallMs);
        tensors = r.totals.tensors;
      }
    }
    const js = median(sigmaMs[contenders.findIndex((c) => c.name === 'js')]);
    for (const [i, c] of contenders.entries()) {
      results.push({ model: model.name, tensors, contender: c.name, sigmaMedianMs: median(sigmaMs[i]), wallMedianMs: median(wallMs[i]), speedupVsJs: js / median(sigmaMs[i]) });
    }
  }
  console.log(`spectral-norm report on real models, median of ${rounds} rounds, default tolerance 1e-6`);
  console.table(results.map((r) => ({ model: r.model, tensors: r.tensors, contender: r.contender, 'σ ms': r.sigmaMedianMs.toFixed(1), 'total ms': r.wallMedianMs.toFixed(1), 'vs js': `${r.speedupVsJs.toFixed(1)}×` })));
  const date = new Date().toISOString();
  const record = {
    benchmark: 'cli-report',
    date,
    command: `npm run bench:cli -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown',
      cores: os.cpus().length,
      memoryGiB: os.totalmem() / 2 ** 30,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      simd: info.cpu.simd,
      loadAverage: os.loadavg(),
    },
    versions: { node: process.version, spectralNorm: require('../../package.json').version },
    notes: 'σ ms: time in the σ computation, summed over tensors; total ms: the whole report, reading and decoding included.',
    results,
  };
  fs.mkdirSync(args.out!, { recursive: true });
  const file = path.join(args.out!, `cli-report-${date.slice(0, 10)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

void main();
