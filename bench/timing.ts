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
  /** A runner whose warm-up takes longer than this gets one timed sample. */
  slowMs: number;
  minSamples: number;
  maxSamples: number;
  rounds: number;
}

// Runners are mostly synchronous: without a turn of the event loop between blocks, no timer (the progress line's
// redraw) would fire until the whole workload is done.
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

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

/** Times every runner on one workload; onProgress(i, done) is called before runner i's warm-up and each of its blocks. */
export async function measure(
  runners: Runner[],
  plan: SamplingPlan,
  onProgress: (index: number, blockDone: boolean) => void,
): Promise<Stats[]> {
  // Warm-up and a first timing, which sets each runner's sample count.
  const counts: number[] = [];
  const firsts: number[] = [];
  const times: number[][] = runners.map(() => []);
  for (const [i, runner] of runners.entries()) {
    onProgress(i, false);
    await yieldToEventLoop();
    await runner.enter?.();
    await runner.run(); // warm-up: JIT, first touch of the outputs, thread pools
    const first = await timeOnce(runner);
    firsts.push(first);
    if (first > plan.slowMs) {
      // Seconds per step (a textbook loop on a 350 MB network): this timing is the one sample, or the suite would
      // take hours. The JSON records samples: 1.
      counts.push(1);
      times[i].push(first);
      continue;
    }
    counts.push(Math.max(plan.minSamples, Math.min(plan.maxSamples, Math.floor(plan.budgetMs / Math.max(first, 1e-3)))));
  }
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < runners.length; i++) {
      const runner = runners[i];
      const block = Math.ceil(counts[i] / plan.rounds);
      if (times[i].length >= counts[i]) {
        onProgress(i, true); // nothing left to sample: the block counts as done
        continue;
      }
      onProgress(i, false);
      await yieldToEventLoop();
      await runner.enter?.();
      // One untimed run wakes a short runner's threads and caches after the previous contender's block.
      if (firsts[i] < 100) await runner.run();
      for (let s = 0; s < block && times[i].length < counts[i]; s++) times[i].push(await timeOnce(runner));
      onProgress(i, true);
    }
  }
  return times.map(summarize);
}
