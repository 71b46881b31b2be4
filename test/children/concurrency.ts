// Run by api/concurrency.test.ts in a child process, so the parent can choose UV_THREADPOOL_SIZE and a crash cannot
// take mocha down. Prints one line of JSON.
//   order:     a long async step on one normalizer, then a tiny one on another; prints which settled first.
//   terminate: worker threads terminated in the middle of an async and of a sync native call; then a step here.
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';

import { SpectralNormalizer } from '../../lib';

const LIB = path.resolve(__dirname, '..', '..', 'lib');

async function order(): Promise<void> {
  // About 10 passes over 37 MiB: tens of milliseconds, where the tiny step takes microseconds.
  const big = new SpectralNormalizer([1024, 9216], { backend: 'cpu', iterations: 10, threads: 1, seed: 1 });
  const small = new SpectralNormalizer([8, 8], { backend: 'cpu', seed: 2 });
  const weight = new Float32Array(1024 * 9216).fill(0.5);
  const settled: string[] = [];
  const long = big.stepAsync(weight).then(() => settled.push('big'));
  const short = small.stepAsync(new Float32Array(64).map((_, i) => Math.cos(i))).then(() => settled.push('small'));
  await Promise.all([long, short]);
  console.log(JSON.stringify({ settled }));
}

// A worker that keeps native calls going: a long one, then short ones back to back (sync, or async with several in
// flight), so that a termination lands inside a call, or between unmarshalling and running one.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { SpectralNormalizer } = require(${JSON.stringify(LIB)});
const big = new SpectralNormalizer([512, 4608], { backend: 'cpu', iterations: 50, threads: 1 });
const bigWeight = new Float32Array(512 * 4608).fill(0.5);
const shape = [64, 300];
const weight = new Float32Array(64 * 300).map((_, i) => Math.sin(i));
parentPort.postMessage('started');
if (workerData.sync) {
  big.step(bigWeight);
  const sn = new SpectralNormalizer(shape, { backend: 'cpu' });
  for (;;) sn.step(weight);
} else {
  big.stepAsync(bigWeight);
  const loop = (sn) => sn.stepAsync(weight).then(() => loop(sn));
  for (let i = 0; i < 4; i++) loop(new SpectralNormalizer(shape, { backend: 'cpu' }));
}
`;

async function terminate(): Promise<void> {
  const delays = [0, 1, 5, 20, 50, 200];
  const workers = delays.flatMap(() => [false, true]).map((sync) => new Worker(WORKER, { eval: true, workerData: { sync } }));
  const codes = await Promise.all(
    workers.map(async (w, i) => {
      await new Promise((resolve) => w.once('message', resolve));
      await new Promise((resolve) => setTimeout(resolve, delays[i >> 1]));
      return w.terminate();
    }),
  );
  const sn = new SpectralNormalizer([64, 48], { backend: 'cpu', seed: 1 });
  const sigma = await sn.stepAsync(new Float32Array(64 * 48).map((_, i) => Math.sin(i)));
  console.log(JSON.stringify({ codes, sigma }));
}

const mode = process.argv[2];
(mode === 'order' ? order() : terminate()).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
