// The chart of a `npm run bench:gpu` result: effective GB/s per workload and contender, the device's copy and read
// bandwidth drawn as limits (bench/chart.ts). The GPU bundle leaves Vega out (the size limit of what can be carried to
// a GPU machine), so there the benchmark writes only the JSON; render it here:
//   node dist/bench/gpu-chart.js bench/results/gpu-bench-<date>.json
import * as fs from 'node:fs';

import { writeChart } from './chart';

interface GpuBenchRecord {
  device: { name: string };
  copyBandwidthBytesPerS: number;
  readBandwidthBytesPerS: number;
  results: {
    workload: string;
    iterations: number;
    bytes: number;
    gbPerS: number;
    torchEagerMs: number | null;
    torchGraphMs: number | null;
    jaxJitMs: number | null;
  }[];
}

/** Writes <file without .json>.svg and .png next to the record; returns their paths. */
export async function renderChart(file: string): Promise<string[]> {
  const record = JSON.parse(fs.readFileSync(file, 'utf8')) as GpuBenchRecord;
  const points = record.results.flatMap((r) => {
    const label = `${r.workload} k=${r.iterations}`;
    const rate = (ms: number | null) => (ms === null ? null : r.bytes / (ms * 1e-3) / 1e9);
    return [
      { workload: label, contender: 'spectral-norm (cuda)', gbPerS: r.gbPerS },
      { workload: label, contender: 'torch eager', gbPerS: rate(r.torchEagerMs) },
      { workload: label, contender: 'torch CUDA graph', gbPerS: rate(r.torchGraphMs) },
      { workload: label, contender: 'jax jit', gbPerS: rate(r.jaxJitMs) },
    ].filter((p): p is { workload: string; contender: string; gbPerS: number } => p.gbPerS !== null);
  });
  const limits = [
    { label: 'device copy', gbPerS: record.copyBandwidthBytesPerS / 1e9 },
    { label: 'device read', gbPerS: record.readBandwidthBytesPerS / 1e9 },
  ];
  return writeChart(points, limits, `One SN step on ${record.device.name}, float32, (k+2)·|W| bytes`, file.replace(/\.json$/, ''));
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/gpu-chart.js <gpu-bench result .json>');
    process.exit(2);
  }
  renderChart(file).then(
    (files) => console.log(`wrote ${files.join(', ')}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
