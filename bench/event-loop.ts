// `npm run bench:event-loop`: how long the event loop waits while 8 async steps on 1024×9216 float32 layers run at
// once (perf_hooks.monitorEventLoopDelay, 1 ms resolution, so a free loop reads about 1 ms). Rounds of 8 concurrent
// steps, with the default threads and with threads 1. Writes bench/results/event-loop-<date>.json.
//
//   npm run bench:event-loop -- [--rounds 5] [--iterations 10]
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { SpectralNormalizer, backendInfo } from '../lib';
import { writeRecord } from './machine';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    iterations: { type: 'string', default: '10' },
    out: { type: 'string', default: path.join('bench', 'results') },
  },
});
const rounds = Number(args.rounds);
const iterations = Number(args.iterations);
const shape = [1024, 9216];
const weight = new Float32Array(shape[0] * shape[1]);
let state = 12345;
for (let i = 0; i < weight.length; i++) {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  weight[i] = state / 2 ** 32 - 0.5;
}

async function measure(threads: number): Promise<Record<string, number>> {
  const normalizers = Array.from({ length: 8 }, (_, i) => new SpectralNormalizer(shape, { backend: 'cpu', iterations, seed: i, threads }));
  const outs = normalizers.map(() => new Float32Array(weight.length));
  await Promise.all(normalizers.map((sn, i) => sn.stepAsync(weight, { out: outs[i] }))); // warm-up
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const start = performance.now();
  for (let round = 0; round < rounds; round++) {
    await Promise.all(normalizers.map((sn, i) => sn.stepAsync(weight, { out: outs[i] })));
  }
  const seconds = (performance.now() - start) / 1000;
  histogram.disable();
  const ms = (ns: number) => ns / 1e6;
  return {
    threads,
    steps: 8 * rounds,
    seconds,
    samples: histogram.count,
    p50Ms: ms(histogram.percentile(50)),
    p99Ms: ms(histogram.percentile(99)),
    maxMs: ms(histogram.max),
  };
}

async function main(): Promise<void> {
  const info = backendInfo();
  if (!info.cpu.available) throw new Error(`the CPU backend is unavailable: ${info.cpu.reason}`);
  console.log(
    `event-loop delay: 8 concurrent async steps on ${shape.join('×')} float32, ${iterations} power iterations each, ` +
      `${rounds} rounds; UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`,
  );
  const results = [];
  for (const threads of [info.cpu.threads, 1]) {
    const r = await measure(threads);
    results.push(r);
    console.log(
      `  threads ${threads}: ${r.steps} steps in ${r.seconds.toFixed(2)} s; delay p50 ${r.p50Ms.toFixed(2)} ms, ` +
        `p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(2)} ms (${r.samples} samples)`,
    );
  }
  writeRecord(args.out!, 'event-loop', 'bench:event-loop', { workload: { shape, layers: 8, iterations, rounds }, results });
  console.log(`event-loop delay p99 (default threads): ${results[0].p99Ms.toFixed(2)} ms (target < 5 ms)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
