// `npm run bench:cli`: `spectral-norm report` on real model files, on every backend and with --exact, side by side
// in one run (rounds interleave the contenders, so machine noise hits them alike); then on a sharded float16
// checkpoint generated on the fly (bench/sharded-model.ts, 8 GB by default), against the file-read bandwidth of the
// same shards measured in the same run, cold and warm. Prints tables and writes bench/results/cli-report-<date>.json.
//
//   npm run bench:cli -- [--rounds 5 (0: skip the real models)] [--out bench/results] [--sharded-gb 8 (0: skip)]
//                        [--sharded-rounds 1]
//
// Cold: the shards are dropped from the page cache before the read and again before `report` (GNU dd's
// iflag=nocache, i.e. posix_fadvise(DONTNEED) on each file, which needs no root); where dd cannot, the run says so.
// Warm: right after, with the shards in the page cache. The goal (issue 18): report ≥ 70% of the read bandwidth.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { report } from '../cli/commands/report';
import { dropFromPageCache, readBandwidth, writeShardedModel } from './sharded-model';
import { writeExampleModels } from '../examples/make-example-models';
import { type BackendChoice, backendInfo } from '../lib';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    out: { type: 'string', default: path.join('bench', 'results') },
    'sharded-gb': { type: 'string', default: '8' },
    'sharded-rounds': { type: 'string', default: '1' },
  },
});
const rounds = Number(args.rounds);
/** Issue 18's goal: report's bandwidth over the file-read bandwidth of the same files, measured in the same run. */
const GOAL = 0.7;
const shardedGigabytes = Number(args['sharded-gb']);

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

/**
 * report on the generated sharded model, cpu backend, default tolerance, against the read bandwidth of its files:
 * cold (each read preceded by dropping the files from the page cache) and warm (right after a full read).
 */
async function sharded() {
  if (!(shardedGigabytes > 0)) return null;
  const folder = path.join(os.tmpdir(), `sn-bench-sharded-${process.pid}`);
  const free = (() => {
    const s = fs.statfsSync(os.tmpdir());
    return s.bavail * s.bsize;
  })();
  if (free < 1.5 * shardedGigabytes * 1e9) {
    console.log(`skipped the sharded model: ${(free / 1e9).toFixed(1)} GB free in ${os.tmpdir()}, and ${shardedGigabytes} GB needs more`);
    return { skipped: `only ${(free / 1e9).toFixed(1)} GB free` };
  }
  try {
    let start = performance.now();
    const model = writeShardedModel(folder, shardedGigabytes);
    console.log(
      `generated ${model.tensors} float16 tensors, ${(model.bytes / 1e9).toFixed(2)} GB in ${model.shards.length} shards (${((performance.now() - start) / 1000).toFixed(0)} s)`,
    );
    console.log(
      `report on it, cpu backend (${info.cpu.simd}, ${info.cpu.threads} threads), tolerance 1e-6, against reading the same shards start to end in 8 MiB chunks; goal: report ≥ ${GOAL * 100}% of the read bandwidth`,
    );
    const options = {
      include: [],
      exclude: [],
      dims: [],
      backend: 'cpu' as const,
      tolerance: 1e-6,
      maxIterations: 1000,
      json: true,
      exact: false,
    };
    const runs = [];
    for (let round = 0; round < Number(args['sharded-rounds']); round++) {
      for (const cache of ['cold', 'warm'] as const) {
        const dropped = cache === 'cold' && dropFromPageCache(model.shards);
        if (cache === 'cold' && !dropped) console.log('dd iflag=nocache is not available: the "cold" figures below are not cold');
        const read = readBandwidth(model.shards);
        if (cache === 'cold') dropFromPageCache(model.shards);
        start = performance.now();
        const r = await report(model.index, options, () => undefined);
        const wallMs = performance.now() - start;
        const iterations = r.tensors.map((t) => t.iterations ?? 0).sort((a, b) => a - b);
        const ratio = model.bytes / (wallMs / 1000) / read;
        runs.push({
          cache,
          cacheDropped: cache === 'cold' ? dropped : null,
          readGBps: read / 1e9,
          reportGBps: model.bytes / 1e6 / wallMs,
          ratio,
          goalMet: ratio >= GOAL,
          wallMs,
          sigmaMs: r.totals.ms,
          iterationsMedian: iterations[Math.floor(iterations.length / 2)],
          iterationsMax: iterations.at(-1),
          converged: r.tensors.every((t) => t.converged),
          loadAverage: os.loadavg(),
        });
        console.log(
          `${cache}: read ${(read / 1e9).toFixed(2)} GB/s, report ${(model.bytes / 1e6 / wallMs).toFixed(2)} GB/s = ${(100 * ratio).toFixed(0)}% of the read bandwidth (goal ${GOAL * 100}%: ${ratio >= GOAL ? 'met' : 'MISSED'}); report took ${(wallMs / 1000).toFixed(1)} s, of which σ (overlapping the reads) ${(r.totals.ms / 1000).toFixed(1)} s; load average ${os.loadavg()[0].toFixed(1)}`,
        );
      }
    }
    return {
      model: `generated sharded float16 checkpoint (bench/sharded-model.ts), ${model.tensors} tensors`,
      bytes: model.bytes,
      shards: model.shards.length,
      backend: 'cpu',
      runs,
    };
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

async function main() {
  const results = [];
  for (const model of rounds > 0 ? models : []) {
    const sigmaMs: number[][] = contenders.map(() => []);
    const wallMs: number[][] = contenders.map(() => []);
    let tensors = 0;
    for (let round = 0; round < rounds; round++) {
      for (const [i, c] of contenders.entries()) {
        const options = {
          include: [],
          exclude: [],
          dims: [],
          backend: c.backend,
          threads: c.threads,
          tolerance: 1e-6,
          maxIterations: 1000,
          json: true,
          exact: c.exact,
        };
        const r = await report(model.file, options, () => undefined);
        sigmaMs[i].push(r.totals.ms);
        wallMs[i].push(r.totals.wallMs);
        tensors = r.totals.tensors;
      }
    }
    const js = median(sigmaMs[contenders.findIndex((c) => c.name === 'js')]);
    for (const [i, c] of contenders.entries()) {
      results.push({
        model: model.name,
        tensors,
        contender: c.name,
        sigmaMedianMs: median(sigmaMs[i]),
        wallMedianMs: median(wallMs[i]),
        speedupVsJs: js / median(sigmaMs[i]),
      });
    }
  }
  if (rounds > 0) console.log(`spectral-norm report on real models, median of ${rounds} rounds, default tolerance 1e-6`);
  if (rounds > 0)
    console.table(
      results.map((r) => ({
        model: r.model,
        tensors: r.tensors,
        contender: r.contender,
        'σ ms': r.sigmaMedianMs.toFixed(1),
        'total ms': r.wallMedianMs.toFixed(1),
        'vs js': `${r.speedupVsJs.toFixed(1)}×`,
      })),
    );
  const shardedResult = await sharded();
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
    sharded: shardedResult,
  };
  fs.mkdirSync(args.out!, { recursive: true });
  const file = path.join(args.out!, `cli-report-${date.slice(0, 10)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

void main();
