// `npm run bench:soak`: 100,000 operations over random shapes, mixing sync, async, batch, one-shot and coalesced
// calls, new objects and old, good inputs and bad (NaN weights, wrong lengths), on the native backend. Prints the
// resident set size after a warm-up and at the end, and its growth. The warm-up lasts until V8's heap has grown to its
// working size; every sample is printed and recorded, so the whole curve can be checked. Each sample also shows V8's
// heap and the ArrayBuffers V8 counts. Writes bench/results/soak-<date>.json.
//
// The npm script pins V8's young generation (--max-semi-space-size=4): by default V8 grows it with the allocation
// rate, in steps of several MiB (its heap went 14.7 → 23 → 39 MiB at operations 30,000 and 100,000 here, then stayed),
// which reads as RSS growth without being a leak. With it pinned, RSS stayed within ±4 MiB over 160,000 operations.
//
//   npm run bench:soak -- [--steps 100000] [--warmup 10000] [--seed 1]
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { SpectralNormBatch, SpectralNormCoalescer, SpectralNormalizer, backendInfo, spectralNorm, spectralNormalizeAsync } from '../lib';
import { mulberry32 } from '../lib/seeded-random';
import { writeRecord } from './machine';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '100000' },
    warmup: { type: 'string', default: '30000' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: path.join('bench', 'results') },
  },
});
const steps = Number(args.steps);
const warmup = Number(args.warmup);

// Seeded, so the soak repeats exactly for a seed.
const random = mulberry32(Number(args.seed));
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));

function randomShape(): number[] {
  if (random() < 0.02) return [int(200, 400), int(330, 500)]; // now and then one large enough to be split over threads
  const kind = int(0, 2);
  if (kind === 0) return [int(1, 80)];
  if (kind === 1) return [int(1, 64), int(1, 64)];
  return [int(1, 16), int(1, 8), int(1, 3), int(1, 3)];
}

function weightFor(shape: readonly number[], dtype: 'float32' | 'float64'): Float32Array | Float64Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const w = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = random() - 0.5;
  if (random() < 0.03) w[int(0, n - 1)] = NaN; // a bad input now and then: the error path must not leak either
  return w;
}

const kept = Array.from({ length: 8 }, () => {
  const shape = randomShape();
  return { shape, sn: new SpectralNormalizer(shape, { seed: 1 }) };
});
const coalescer = new SpectralNormCoalescer({ maxDelayMs: 0 });

/** One operation of a random kind; resolves when it has settled. Errors are expected for the bad inputs. */
async function operation(): Promise<void> {
  const dtype = random() < 0.2 ? 'float64' : 'float32';
  const kind = int(0, 6);
  if (kind === 0) {
    const shape = randomShape(); // sync calls on the long-lived objects would race their async ones, so a new object
    const sn = new SpectralNormalizer(shape, { dtype });
    sn.warmup(weightFor(shape, dtype), 2);
    sn.step(weightFor(shape, dtype));
  } else if (kind === 1) {
    const k = kept[int(0, kept.length - 1)];
    await k.sn.stepAsync(weightFor(k.shape, 'float32'));
  } else if (kind === 2) {
    const shape = randomShape();
    const sn = new SpectralNormalizer(shape, { dtype, iterations: int(1, 3) });
    await sn.stepAsync(weightFor(shape, dtype), { update: random() < 0.8 });
  } else if (kind === 3) {
    const layers = Array.from({ length: int(1, 5) }, () => ({ shape: randomShape() }));
    const batch = new SpectralNormBatch(layers, { dtype });
    const weights = layers.map((l) => weightFor(l.shape, dtype));
    if (random() < 0.5) batch.step(weights);
    else await batch.stepAsync(weights);
  } else if (kind === 4) {
    const shape = randomShape();
    spectralNorm(weightFor(shape, dtype), shape, { maxIterations: 50 });
  } else if (kind === 5) {
    const shape = randomShape();
    await spectralNormalizeAsync(weightFor(shape, dtype), shape, { maxIterations: 50 });
  } else {
    const shape = randomShape();
    const wrong = random() < 0.05; // a request that fails validation
    const weight = weightFor(wrong ? [shape[0] + 1, ...shape.slice(1)] : shape, dtype);
    await coalescer.normalize(weight, shape, { maxIterations: 50 });
  }
}

interface Memory {
  steps: number;
  rssMiB: number;
  /** V8's heap, and memory outside it that V8 knows of (ArrayBuffers): what the rest of RSS is not. */
  heapTotalMiB: number;
  externalMiB: number;
}

function memory(steps: number): Memory {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { steps, rssMiB: m.rss / 2 ** 20, heapTotalMiB: m.heapTotal / 2 ** 20, externalMiB: m.external / 2 ** 20 };
}

async function main(): Promise<void> {
  if (!backendInfo().cpu.available) throw new Error('the soak runs on the native backend, which did not load');
  if (!(globalThis as { gc?: () => void }).gc) console.log('(run with node --expose-gc for steadier figures)');
  const concurrency = 16;
  let done = 0;
  let failed = 0;
  let afterWarmup: Memory | null = null;
  const samples: Memory[] = [];
  const start = performance.now();
  while (done < steps) {
    const chunk = Math.min(concurrency, steps - done);
    const settled = await Promise.allSettled(Array.from({ length: chunk }, () => operation()));
    failed += settled.filter((s) => s.status === 'rejected').length;
    for (const s of settled) {
      if (s.status === 'rejected' && !(s.reason instanceof RangeError)) throw s.reason;
    }
    const before = done;
    done += chunk;
    if ((before < warmup && done >= warmup) || Math.floor(before / 10_000) !== Math.floor(done / 10_000)) {
      const m = memory(done);
      samples.push(m);
      if (before < warmup && done >= warmup) afterWarmup = m;
      console.log(
        `  ${done} operations: RSS ${m.rssMiB.toFixed(1)} MiB (V8 heap ${m.heapTotalMiB.toFixed(1)}, external ${m.externalMiB.toFixed(1)})`,
      );
    }
  }
  await coalescer.close();
  const seconds = (performance.now() - start) / 1000;
  const end = memory(done);
  const start0 = afterWarmup ?? samples[0];
  const growth = end.rssMiB - start0.rssMiB;
  writeRecord(args.out!, 'soak', 'bench:soak', {
    workload: { steps, warmup, seed: Number(args.seed), concurrency },
    seconds,
    failedAsExpected: failed,
    memory: { afterWarmup: start0, end, rssGrowthMiB: growth },
    samples,
  });
  console.log(`${steps} operations in ${seconds.toFixed(1)} s (${failed} rejected bad inputs, as intended)`);
  console.log(`RSS after ${warmup} warm-up operations: ${start0.rssMiB.toFixed(1)} MiB; at the end: ${end.rssMiB.toFixed(1)} MiB`);
  console.log(`RSS growth after warm-up: ${growth.toFixed(1)} MiB (target < 10 MB)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
