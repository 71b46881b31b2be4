// `npm run bench:fixed-cost`: the fixed cost of small steps (issue 13) on a 64×64×3×3 float32 layer, default settings:
// a one-shot spectralNormalize with maxIterations 1, and a SpectralNormalizer step (k=1, with `out`), each against
// the time its bytes take at this machine's read bandwidth at that size (measured in the same run, all threads), and
// the normalizer step against numpy's own step on that layer (bench/peers/python_peers.py, timed in Python).
// Both calls move 3·|W| bytes: one sweep over W, then W read and W/σ written. Writes bench/results/fixed-cost-<date>.json.
//
//   npm run bench:fixed-cost
import * as path from 'node:path';

import { SpectralNormalizer, backendInfo, spectralNormalize } from '../lib';
import { nativeAddon } from '../lib/backends';
import { runPythonPeer } from './contenders/python';
import { writeRecord } from './machine';
import { measure } from './timing';
import type { Workload } from './workloads';
import { fixedWeight } from './networks';

const shape = [64, 64, 3, 3];
const rows = 64;
const cols = 64 * 3 * 3;
const elements = rows * cols;
const bytesMoved = 3 * elements * 4;
const plan = { budgetMs: 1500, slowMs: 2000, minSamples: 3, maxSamples: 501, rounds: 5 };

async function main(): Promise<void> {
  const addon = nativeAddon();
  if (!addon) throw new Error(`the native addon did not load: ${backendInfo().cpu.reason}`);
  const threads = backendInfo().cpu.threads;
  const weight = fixedWeight('float32', elements, 12345) as Float32Array;
  const out = new Float32Array(elements);
  const normalizer = new SpectralNormalizer(shape, { backend: 'cpu', iterations: 1, seed: 1 });
  // Each runner does many calls per timing, so a sample is well above the timer's resolution.
  const calls = 20;
  const oneShotRunner = {
    run: () => {
      for (let i = 0; i < calls; i++) spectralNormalize(weight, shape, { backend: 'cpu', maxIterations: 1, out });
    },
  };
  const stepRunner = {
    run: () => {
      for (let i = 0; i < calls; i++) normalizer.step(weight, { out });
    },
  };
  const [oneShot, step] = await measure([oneShotRunner, stepRunner], plan, () => {});
  const readAtSize = addon.internal.readBandwidth(elements * 4, threads, 9); // bytes/s, W in cache
  const bytesUs = (bytesMoved / readAtSize) * 1e6;
  const oneShotUs = (oneShot.medianMs * 1e3) / calls;
  const stepUs = (step.medianMs * 1e3) / calls;
  // The fastest sample: what a quiet machine would come close to. The targets use the medians.
  const bestUs = { oneShot: (oneShot.minMs * 1e3) / calls, normalizerStep: (step.minMs * 1e3) / calls };

  const workload: Workload = {
    name: '64×64×3×3 k=1',
    group: 'single',
    matrices: [[rows, cols]],
    shapes: [shape],
    iterations: 1,
    elements,
    bytesMoved,
  };
  const numpy = runPythonPeer('numpy', [workload], { budgetMs: 3000, slowMs: 2000, minSamples: 3, maxSamples: 5000 });
  const numpyStats = numpy.results?.[workload.name];
  const numpyUs = numpyStats ? numpyStats.medianMs * 1e3 : null;

  const targets = [
    {
      target: 'one-shot 64×64×3×3, 1 iteration: ≤ 15 µs above its bytes',
      measured: `${(oneShotUs - bytesUs).toFixed(1)} µs`,
      met: oneShotUs - bytesUs <= 15,
    },
    {
      target: 'normalizer step 64×64×3×3: ≤ 2× its bytes at in-cache bandwidth',
      measured: `${(stepUs / bytesUs).toFixed(2)}×`,
      met: stepUs <= 2 * bytesUs,
    },
    {
      target: "normalizer step 64×64×3×3: no slower than numpy's step",
      measured: numpyUs === null ? `numpy not measured: ${numpy.unavailable}` : `${(numpyUs / stepUs).toFixed(2)}× numpy`,
      met: numpyUs === null ? null : stepUs <= numpyUs,
    },
  ];
  console.log(
    `read bandwidth at ${elements * 4} bytes, ${threads} threads: ${(readAtSize / 1e9).toFixed(1)} GB/s; ${bytesMoved} bytes take ${bytesUs.toFixed(1)} µs`,
  );
  console.log(
    `one-shot (maxIterations 1): ${oneShotUs.toFixed(1)} µs; normalizer step: ${stepUs.toFixed(1)} µs; numpy step: ${numpyUs?.toFixed(1) ?? 'n/a'} µs`,
  );
  console.log(
    `fastest sample: one-shot ${bestUs.oneShot.toFixed(1)} µs, step ${bestUs.normalizerStep.toFixed(1)} µs, numpy ${numpyStats ? (numpyStats.minMs * 1e3).toFixed(1) : 'n/a'} µs`,
  );
  for (const t of targets) console.log(`  ${t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS'} ${t.target}: ${t.measured}`);
  // A run capped by SN_SIMD gets its own file, named for the path it ran.
  const name = process.env.SN_SIMD ? `fixed-cost-${backendInfo().cpu.simd}` : 'fixed-cost';
  writeRecord(path.join('bench', 'results'), name, 'bench:fixed-cost', {
    simdCap: process.env.SN_SIMD ?? null,
    layer: { shape, bytesMoved },
    threads,
    readAtSizeGBs: readAtSize / 1e9,
    bytesUs,
    perCallUs: { oneShot: oneShotUs, normalizerStep: stepUs, numpyStep: numpyUs },
    fastestSampleUs: { ...bestUs, numpyStep: numpyStats ? numpyStats.minMs * 1e3 : null },
    samples: { oneShot, step, callsPerSample: calls },
    numpy: numpy.unavailable ? { unavailable: numpy.unavailable } : numpy.info,
    targets,
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
