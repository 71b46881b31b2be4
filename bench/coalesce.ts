// `npm run bench:coalesce`: what SpectralNormCoalescer buys a server (issue 13). 4000 concurrent one-shot normalize
// requests on distinct 64×64×3×3 float32 layers, each W/σ into its own `out`, at 1 iteration and converged
// (tolerance 1e-4, at most 30 iterations): first each request on its own with spectralNormalizeAsync, then all
// through one SpectralNormCoalescer with its default settings. The two run in alternating rounds in this one process,
// so the drifts of a shared machine hit both alike; the ratio is of median round times. Targets: coalesced/individual
// throughput ≥ 3× at 1 iteration and ≥ 1.5× converged. Writes bench/results/coalesce-<date>.json.
//
//   npm run bench:coalesce [-- --rounds 5 --requests 4000]
import { parseArgs } from 'node:util';

import { SpectralNormCoalescer, type SpectralNormResult, spectralNormalizeAsync } from '../lib';
import { buildJob, executeAsync } from '../lib/engine';
import { prepare } from '../lib/oneshot';
import { writeRecord } from './machine';
import { fixedWeight, resultsDir } from './networks';
import { type Stats, summarize } from './timing';

const shape = [64, 64, 3, 3];
const elements = 64 * 64 * 3 * 3;

interface Setting {
  name: string;
  options: { maxIterations: number; tolerance?: number };
  target: number;
}

const settings: Setting[] = [
  { name: '1 iteration', options: { maxIterations: 1 }, target: 3 },
  { name: 'converged', options: { maxIterations: 30, tolerance: 1e-4 }, target: 1.5 },
];

interface Round {
  ms: number;
  results: SpectralNormResult[];
}

async function timed(fire: () => Promise<SpectralNormResult>[]): Promise<Round> {
  const start = process.hrtime.bigint();
  const results = await Promise.all(fire());
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, results };
}

/**
 * The native work alone: the same requests, validated and given start vectors beforehand, run as back-to-back jobs of
 * `batchSize` layers. No request can finish faster than this share of it, coalesced or not, so individual time over
 * this time is the most coalescing could give.
 */
async function nativeOnly(weights: Float32Array[], outs: Float32Array[], options: Setting['options'], batchSize: number): Promise<number> {
  const prepared = weights.map((w, i) => prepare(w, shape, { ...options, out: outs[i] }, true));
  const { dtype, iterations, tolerance, eps, precision, threads } = prepared[0].job;
  const jobs = [];
  for (let begin = 0; begin < prepared.length; begin += batchSize) {
    const batch = prepared.slice(begin, begin + batchSize).map((p) => {
      const { weight, out, u, v } = p.job.layers[0];
      return { geometry: p.geometry, weight, out, u, v };
    });
    jobs.push(
      buildJob(
        batch,
        batch.map((l) => l.weight),
        batch.map((l) => l.out),
        { dtype, iterations, tolerance, eps, precision, legacy: false, threads },
      ),
    );
  }
  const start = process.hrtime.bigint();
  for (const job of jobs) await executeAsync(prepared[0].backend, job);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '4000' } } });
  const rounds = Number(values.rounds);
  const requests = Number(values.requests);
  const weights = Array.from({ length: requests }, (_, i) => fixedWeight('float32', elements, 1000 + i) as Float32Array);
  const outs = Array.from({ length: requests }, () => new Float32Array(elements));

  const records = [];
  for (const setting of settings) {
    const individual = () => weights.map((w, i) => spectralNormalizeAsync(w, shape, { ...setting.options, out: outs[i] }));
    const coalescer = new SpectralNormCoalescer();
    const coalesced = () => weights.map((w, i) => coalescer.normalize(w, shape, { ...setting.options, out: outs[i] }));
    // Warm-up: JIT, first touch of the outputs, the thread pools.
    await timed(individual);
    await timed(coalesced);
    const times = { individual: [] as number[], coalesced: [] as number[], nativeOnly: [] as number[] };
    let last: { individual: Round; coalesced: Round } | null = null;
    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so neither always follows the other's garbage or cache state.
      const a = round % 2 === 0 ? await timed(individual) : null;
      const c = await timed(coalesced);
      const b = a ?? (await timed(individual));
      times.individual.push(b.ms);
      times.coalesced.push(c.ms);
      times.nativeOnly.push(await nativeOnly(weights, outs, setting.options, 64));
      last = { individual: b, coalesced: c };
    }
    await coalescer.close();
    // The same σ either way: bit for bit when the batch ran where a request alone runs (see docs/server.md).
    let maxRelativeDiff = 0;
    const backends = new Set<string>();
    last!.individual.results.forEach((r, i) => {
      const c = last!.coalesced.results[i];
      backends.add(`${r.backend}/${c.backend}`);
      maxRelativeDiff = Math.max(maxRelativeDiff, Math.abs(c.sigma - r.sigma) / r.sigma);
    });
    const stats = {
      individual: summarize(times.individual),
      coalesced: summarize(times.coalesced),
      nativeOnly: summarize(times.nativeOnly),
    };
    const ratio = stats.individual.medianMs / stats.coalesced.medianMs;
    const bound = stats.individual.medianMs / stats.nativeOnly.medianMs;
    const perSecond = (s: Stats) => Math.round((requests / s.medianMs) * 1e3);
    const meanIterations = last!.coalesced.results.reduce((sum, r) => sum + r.iterations, 0) / requests;
    console.log(
      `${setting.name}: individual ${stats.individual.medianMs.toFixed(0)} ms (${perSecond(stats.individual)}/s), ` +
        `coalesced ${stats.coalesced.medianMs.toFixed(0)} ms (${perSecond(stats.coalesced)}/s): ${ratio.toFixed(2)}× ` +
        `(target ≥ ${setting.target}×: ${ratio >= setting.target ? 'met' : 'MISS'}); native work alone in batches of 64 ` +
        `${stats.nativeOnly.medianMs.toFixed(0)} ms, so coalescing can give at most ${bound.toFixed(2)}×; ${meanIterations.toFixed(1)} iterations per request, ` +
        `backends individual/coalesced ${[...backends].join(', ')}, σ differs by ≤ ${maxRelativeDiff.toExponential(1)} (relative); ` +
        `coalescer ${JSON.stringify(coalescer.stats())}`,
    );
    records.push({
      setting: setting.name,
      options: setting.options,
      targetRatio: setting.target,
      ratio,
      met: ratio >= setting.target,
      boundRatio: bound,
      meanIterations,
      backends: [...backends],
      maxSigmaRelativeDiff: maxRelativeDiff,
      roundsMs: times,
      stats,
      coalescerStats: coalescer.stats(),
    });
  }
  const [one, converged] = records;
  writeRecord(resultsDir(undefined), 'coalesce', 'bench:coalesce', {
    requests,
    shape,
    dtype: 'float32',
    rounds,
    coalescerDefaults: true,
    settings: records,
  });
  const smaller = Math.min(one.ratio, converged.ratio);
  console.log(
    `coalesced/individual throughput ratio: ${smaller.toFixed(2)} (1 iteration ${one.ratio.toFixed(2)}, converged ${converged.ratio.toFixed(2)})`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
