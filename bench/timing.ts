// Sampling: warm up, size the sample count to a time budget, then take the samples in rounds, each contender in
// turn, so that slow drifts of a shared machine hit every contender alike. Reports median, min and max.
import type { Runner } from './contenders/contender';

export interface Stats {
  medianMs: number;
  minMs: number;
  maxMs: number;
  samples: number;
}

export interface SamplingPlan {
  budgetMs: number;
  minSamples: number;
  maxSamples: number;
  rounds: number;
}

async function timeOnce(runner: Runner): Promise<number> {
  const start = process.hrtime.bigint();
  await runner.run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export function summarize(times: number[]): Stats {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    medianMs: sorted[Math.floor(sorted.length / 2)],
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    samples: sorted.length,
  };
}

/** Times every runner on one workload; onProgress is called after each block. */
export async function measure(
  runners: Runner[],
  plan: SamplingPlan,
  onProgress: (index: number) => void,
): Promise<Stats[]> {
  // Warm-up and a first timing, which sets each runner's sample count.
  const counts: number[] = [];
  const firsts: number[] = [];
  for (const runner of runners) {
    await runner.enter?.();
    await runner.run();
    const first = await timeOnce(runner);
    firsts.push(first);
    counts.push(Math.max(plan.minSamples, Math.min(plan.maxSamples, Math.floor(plan.budgetMs / Math.max(first, 1e-3)))));
  }
  const times: number[][] = runners.map(() => []);
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < runners.length; i++) {
      const runner = runners[i];
      const block = Math.ceil(counts[i] / plan.rounds);
      if (times[i].length >= counts[i]) continue;
      await runner.enter?.();
      // One untimed run wakes a short runner's threads and caches after the previous contender's block.
      if (firsts[i] < 100) await runner.run();
      for (let s = 0; s < block && times[i].length < counts[i]; s++) times[i].push(await timeOnce(runner));
      onProgress(i);
    }
  }
  return times.map(summarize);
}
