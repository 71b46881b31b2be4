// Run by cuda/cuda-paths.test.ts in a child process, which needs a fresh process (its own environments, its own
// SN_CUDA_TUNING). Prints one line of JSON.
//   tuning: steps of several shapes and modes on cuda, under the SN_CUDA_TUNING the parent set, against the cpu
//           backend; prints the worst error as a fraction of the tolerance.
//   worker: a worker thread uses the GPU (a host step, a device handle it never disposes) and exits; prints what the
//           CUDA backend held in the worker, after it exited, and after the main thread used the GPU in turn.
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';

import { SpectralNormBatch, backendInfo } from '../../lib';
import { nativeAddon } from '../../lib/backends';
import { FLOAT32_TOLERANCE, FLOAT64_TOLERANCE, randomArray } from '../support/helpers';

const LIB = path.resolve(__dirname, '..', '..', 'lib');

function tuning(): void {
  const reference = backendInfo().cpu.available ? 'cpu' : 'js';
  const shapes = [
    [37, 60],
    [29, 27],
    [100, 1800],
    [9, 5000],
    [200, 64],
    [3, 40000],
  ];
  let worst = 0;
  let checks = 0;
  for (const dtype of ['float32', 'float64'] as const) {
    const tol = dtype === 'float64' ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
    for (const [iterations, legacy, update] of [
      [1, false, true],
      [3, false, true],
      [2, true, true],
      [1, false, false],
    ] as const) {
      const weights = shapes.map(([r, c]) => randomArray(dtype, r * c));
      // cuda sums as it does by default ('mixed'); the reference sums in float64, so each backend's chunked float32
      // rounding is held to exact sums rather than to the other's.
      const results = (['cuda', reference] as const).map((backend) => {
        const precision = backend === 'cuda' ? 'mixed' : 'float64';
        const batch = new SpectralNormBatch(
          shapes.map((shape, i) => ({ shape, seed: i })),
          { backend, dtype, iterations, legacy, precision },
        );
        const out = weights.map((w) => (dtype === 'float64' ? new Float64Array(w.length) : new Float32Array(w.length)).fill(NaN));
        const sigma = batch.step(weights, { out, update });
        return { sigma, out, u: shapes.map((_, i) => batch.u(i)) };
      });
      const compare = (a: ArrayLike<number>, e: ArrayLike<number>) => {
        for (let i = 0; i < e.length; i++) {
          const excess = Math.abs(a[i] - e[i]) / (tol.atol + tol.rtol * Math.abs(e[i]));
          worst = Math.max(worst, Number.isNaN(excess) ? Infinity : excess);
          checks++;
        }
      };
      compare(results[0].sigma, results[1].sigma);
      shapes.forEach((_, i) => {
        compare(results[0].out[i], results[1].out[i]);
        compare(results[0].u[i], results[1].u[i]);
      });
    }
  }
  console.log(JSON.stringify({ worst, checks }));
}

const WORKER = `
const { parentPort } = require('node:worker_threads');
const { SpectralNormBatch } = require(${JSON.stringify(LIB)});
const { nativeAddon } = require(${JSON.stringify(path.join(LIB, 'backends'))});
const w = new Float32Array(40 * 300).map((_, i) => Math.sin(i));
const batch = new SpectralNormBatch([{ shape: [40, 300], seed: 1 }], { backend: 'cuda', iterations: 2 });
batch.step([w.slice()]);
const handle = batch.toDevice([w]);  // never disposed: its finalizer frees it when the worker ends
batch.step(handle);
parentPort.postMessage(nativeAddon().internal.cudaResources());
`;

async function worker(): Promise<void> {
  const addon = nativeAddon()!;
  const w = new Worker(WORKER, { eval: true });
  const inWorker = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await new Promise((resolve) => w.once('exit', resolve));
  const afterWorker = addon.internal.cudaResources();
  new SpectralNormBatch([{ shape: [4, 5], seed: 1 }], { backend: 'cuda' }).step([new Float32Array(20).fill(1)]);
  const afterMain = addon.internal.cudaResources();
  console.log(JSON.stringify({ inWorker, afterWorker, afterMain }));
}

const mode = process.argv[2];
if (mode === 'tuning') tuning();
else if (mode === 'worker') void worker();
else throw new Error(`unknown mode ${mode}`);
