// `npm run bench`: one SpectralNormalizer step (1 power iteration + W/σ) on a 512×4608 float32 layer, native CPU
// backend against the pure-JS backend, side by side in one run, next to this machine's read bandwidth measured in the
// same run. Prints a table and writes bench/results/step-speed-<date>.json.
//
//   npm run bench -- [--rows 512] [--cols 4608] [--samples 31] [--out bench/results]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { type BackendName, SpectralNormalizer, backendInfo } from '../lib';
import { nativeAddon } from '../lib/backends';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '512' },
    cols: { type: 'string', default: '4608' },
    samples: { type: 'string', default: '35' },
    out: { type: 'string', default: path.join('bench', 'results') },
  },
});
const rows = Number(args.rows);
const cols = Number(args.cols);
const samples = Number(args.samples);

interface Contender {
  name: string;
  backend: BackendName;
  threads?: number;
}

const info = backendInfo();
const contenders: Contender[] = [];
const skipped: string[] = [];
if (info.cpu.available) {
  contenders.push({ name: `cpu (${info.cpu.simd}, ${info.cpu.threads} threads)`, backend: 'cpu' });
  if (info.cpu.threads > 1) contenders.push({ name: `cpu (${info.cpu.simd}, 1 thread)`, backend: 'cpu', threads: 1 });
} else {
  skipped.push(`cpu: ${info.cpu.reason}`);
}
contenders.push({ name: 'js', backend: 'js' });

// A fixed pseudo-random weight (an LCG), the same every run.
const weight = new Float32Array(rows * cols);
let state = 12345;
for (let i = 0; i < weight.length; i++) {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  weight[i] = state / 2 ** 32 - 0.5;
}
const out = new Float32Array(weight.length);
const bytesPerStep = 3 * weight.byteLength; // (k + 2)·|W| with k = 1: one fused sweep, then read W and write W/σ

const runners = contenders.map((c) => {
  const sn = new SpectralNormalizer([rows, cols], { backend: c.backend, threads: c.threads, seed: 1 });
  return () => sn.step(weight, { out });
});

function time(run: () => unknown): number {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

// Rounds of short blocks: each contender runs a block (two warm-up steps, then timed ones) in turn, round after
// round, so that machine noise over time hits every contender alike, while within a block its threads are awake
// (an idle thread pool woken after another contender's 10 ms can cost a VM's vCPU far more than the step itself).
const rounds = 5;
const perBlock = Math.max(1, Math.ceil(samples / rounds));
const times: number[][] = contenders.map(() => []);
for (let round = 0; round < rounds; round++) {
  runners.forEach((run, i) => {
    run();
    run();
    for (let s = 0; s < perBlock; s++) times[i].push(time(run));
  });
}

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted[sorted.length - 1] };
};

// The roofline, measured now: streaming reads through the same SIMD kernels, from DRAM (512 MiB) and at this
// layer's own working-set size (which may fit in the last-level cache).
const addon = nativeAddon();
const threadsAll = info.cpu.threads;
const bandwidth = addon
  ? {
      dram1: addon.readBandwidth(512 * 2 ** 20, 1, 5),
      dramAll: addon.readBandwidth(512 * 2 ** 20, threadsAll, 5),
      layer1: addon.readBandwidth(weight.byteLength, 1, 21),
      layerAll: addon.readBandwidth(weight.byteLength, threadsAll, 21),
    }
  : null;
if (!addon) skipped.push('bandwidth probe: the native addon did not load');

const jsMedian = stats(times[contenders.findIndex((c) => c.backend === 'js')]).median;
const results = contenders.map((c, i) => {
  const st = stats(times[i]);
  const gbs = bytesPerStep / (st.median / 1e3) / 1e9;
  const threads = c.threads ?? threadsAll;
  const dram = bandwidth ? (threads === 1 ? bandwidth.dram1 : bandwidth.dramAll) : NaN;
  const atSize = bandwidth ? (threads === 1 ? bandwidth.layer1 : bandwidth.layerAll) : NaN;
  return {
    contender: c.name,
    medianMs: st.median,
    minMs: st.min,
    maxMs: st.max,
    speedupVsJs: jsMedian / st.median,
    gbPerS: gbs,
    fractionOfDramRead: gbs / (dram / 1e9),
    fractionOfReadAtLayerSize: gbs / (atSize / 1e9),
  };
});

const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '-');
console.log(`spectral-norm step benchmark: ${rows}×${cols} float32 (${(weight.byteLength / 2 ** 20).toFixed(1)} MiB), 1 power iteration + W/σ, ${rounds}×${perBlock} samples per contender`);
console.table(
  results.map((r) => ({
    contender: r.contender,
    'median ms': r.medianMs.toFixed(3),
    'min ms': r.minMs.toFixed(3),
    'max ms': r.maxMs.toFixed(3),
    'speed-up vs js': `${r.speedupVsJs.toFixed(1)}×`,
    'GB/s (3·|W| per step)': r.gbPerS.toFixed(1),
    'of DRAM read bw': percent(r.fractionOfDramRead),
    [`of read bw at ${(weight.byteLength / 2 ** 20).toFixed(0)} MiB`]: percent(r.fractionOfReadAtLayerSize),
  })),
);
if (bandwidth) {
  const f = (x: number) => `${(x / 1e9).toFixed(1)} GB/s`;
  console.log(`read bandwidth: DRAM (512 MiB) ${f(bandwidth.dram1)} on 1 thread, ${f(bandwidth.dramAll)} on ${threadsAll}; ` +
    `at this layer's size ${f(bandwidth.layer1)} on 1 thread, ${f(bandwidth.layerAll)} on ${threadsAll}`);
}
for (const s of skipped) console.log(`skipped ${s}`);
const cpu = results.find((r) => r.contender.startsWith('cpu') && !r.contender.includes('1 thread'));
if (cpu) console.log(`native cpu / js speed-up: ${cpu.speedupVsJs.toFixed(1)}× (target ≥ 5×)`);

const date = new Date().toISOString();
const record = {
  benchmark: 'step-speed',
  date,
  command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
  machine: {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    simd: info.cpu.simd,
  },
  versions: { node: process.version, v8: process.versions.v8, spectralNorm: require('../../package.json').version },
  workload: { shape: [rows, cols], dtype: 'float32', iterations: 1, samples: rounds * perBlock, rounds, bytesPerStep },
  bandwidthBytesPerSecond: bandwidth,
  results,
  skipped,
};
fs.mkdirSync(args.out!, { recursive: true });
const file = path.join(args.out!, `step-speed-${date.slice(0, 10)}.json`);
fs.writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${file}`);
