// The CUDA kernel workbench: every kernel path against the CPU backend (or the JS one without the addon's CPU
// backend), on awkward shapes, every dim of a 4-D weight, every network of bench/networks.json, both dtypes, every
// mode (default, legacy, eval, converge, warm-up), with outputs poisoned with NaN before the GPU writes them. Then
// the step throughput of device-resident weights in GB/s next to the device-to-device copy bandwidth measured in the
// same run. Exits 1 on any mismatch.
//
//   node dist/bench/cuda-workbench.js [--out DIR] [--quick]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { type BackendName, type FloatArray, SpectralNormBatch, backendInfo, spectralNorm } from '../lib';
import { nativeAddon } from '../lib/backends';
import { assertClose, poisoned, randomArray, toleranceFor } from '../test/support/helpers';
import { timeDeviceStep } from './device-step-timing';
import { machine } from './machine';
import { elements, networks, resultsDir, synthetic } from './networks';

const { values: args } = parseArgs({ options: { out: { type: 'string' }, quick: { type: 'boolean', default: false } } });
const info = backendInfo();
if (!info.cuda.available) {
  console.error(`cuda-workbench: the cuda backend is unavailable: ${info.cuda.reason}`);
  process.exit(1);
}
const addon = nativeAddon()!;
const reference: BackendName = info.cpu.available ? 'cpu' : 'js';
const failures: string[] = [];
const checks: string[] = [];

function check(name: string, body: () => void): void {
  try {
    body();
    checks.push(name);
  } catch (error) {
    failures.push(`${name}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
    console.log(`  FAIL ${name}`);
  }
}

interface Case {
  name: string;
  layers: { shape: number[]; dim?: number }[];
}

const awkward: Case[] = [
  { name: '1x1', layers: [{ shape: [1, 1] }] },
  { name: '1xn', layers: [{ shape: [1, 1031] }] },
  { name: 'nx1', layers: [{ shape: [1031, 1] }] },
  { name: '31x33', layers: [{ shape: [31, 33] }] },
  { name: '1000x3', layers: [{ shape: [1000, 3] }] },
  ...[0, 1, 2, 3].map((dim) => ({ name: `4-D 6x5x3x7 dim ${dim}`, layers: [{ shape: [6, 5, 3, 7], dim }] })),
  { name: '1-D 97', layers: [{ shape: [97] }] },
  {
    name: 'mixed batch',
    layers: [{ shape: [1, 1] }, { shape: [31, 33] }, { shape: [97] }, { shape: [6, 5, 3, 7], dim: 2 }, { shape: [257, 513] }],
  },
];
const nets: Case[] = networks().map((n) => ({ name: n.name, layers: n.shapes.map((shape) => ({ shape })) }));

// One step of a batch on `backend`, out poisoned, from fixed seeds: σ, out, u, v.
function runBatch(
  c: Case,
  backend: BackendName,
  dtype: 'float32' | 'float64',
  legacy: boolean,
  iterations: number,
  update: boolean,
  weights: FloatArray[],
) {
  const batch = new SpectralNormBatch(
    c.layers.map((l, i) => ({ ...l, seed: 100 + i })),
    { backend, dtype, legacy, iterations },
  );
  const out = weights.map((w) => poisoned(dtype, w.length));
  const sigma = batch.step(weights, { out, update });
  return { sigma, out, u: c.layers.map((_, i) => batch.u(i)), v: c.layers.map((_, i) => batch.v(i)) };
}

function compare(c: Case, dtype: 'float32' | 'float64', legacy: boolean, iterations: number, update: boolean): void {
  const weights = c.layers.map((l) => randomArray(dtype, elements(l.shape)));
  const gpu = runBatch(c, 'cuda', dtype, legacy, iterations, update, weights);
  const ref = runBatch(c, reference, dtype, legacy, iterations, update, weights);
  const tol = toleranceFor(dtype);
  assertClose(gpu.sigma, ref.sigma, tol, 'sigma');
  c.layers.forEach((_, i) => {
    assertClose(gpu.out[i], ref.out[i], tol, `out[${i}]`);
    assertClose(gpu.u[i], ref.u[i], tol, `u[${i}]`);
    assertClose(gpu.v[i], ref.v[i], tol, `v[${i}]`);
  });
  // Bitwise determinism: the same call twice gives the same bits.
  const again = runBatch(c, 'cuda', dtype, legacy, iterations, update, weights);
  c.layers.forEach((_, i) => {
    if (!Buffer.from(again.out[i].buffer).equals(Buffer.from(gpu.out[i].buffer))) throw new Error(`out[${i}] differs run to run`);
  });
}

console.log(`cuda-workbench on ${info.cuda.devices.map((d) => d.name).join(', ')}; reference backend: ${reference}`);
for (const c of [...awkward, ...nets]) {
  const dtypes = nets.includes(c) ? (['float32'] as const) : (['float32', 'float64'] as const);
  for (const dtype of dtypes) {
    const modes: [string, boolean, number, boolean][] = [
      ['1 iteration', false, 1, true],
      ['3 iterations', false, 3, true],
      ['eval', false, 1, false],
      ...(c.layers.some((l) => l.shape.length === 1)
        ? []
        : ([['legacy, 2 iterations', true, 2, true]] as [string, boolean, number, boolean][])),
    ];
    for (const [mode, legacy, iterations, update] of modes) {
      check(`${c.name} ${dtype} ${mode}`, () => compare(c, dtype, legacy, iterations, update));
    }
  }
}
for (const c of awkward.filter((a) => a.layers.length === 1)) {
  for (const dtype of ['float32', 'float64'] as const) {
    check(`${c.name} ${dtype} converge (spectralNorm)`, () => {
      const l = c.layers[0];
      const w = randomArray(dtype, elements(l.shape));
      const g = spectralNorm(w, l.shape, { dim: l.dim, backend: 'cuda', seed: 7 });
      const r = spectralNorm(w, l.shape, { dim: l.dim, backend: reference, seed: 7 });
      assertClose(g.sigma, r.sigma, { rtol: 1e-5, atol: 1e-6 }, 'sigma');
      if (g.converged !== r.converged) throw new Error(`converged ${g.converged}, expected ${r.converged}`);
    });
  }
}
console.log(`correctness: ${checks.length} checks passed, ${failures.length} failed`);
for (const f of failures) console.log(`  ${f}`);

// Throughput: device-resident weights, one step = k sweeps + the division; bytes counted as (k + 2)·|W|.
const device = 0;
const copyBandwidth = addon.internal.cudaCopyBandwidth(device, 1 << 30, 20);
console.log(`device-to-device copy: ${(copyBandwidth / 1e9).toFixed(0)} GB/s (read + write)`);
const timings: Record<string, unknown>[] = [];
const workloads = [...networks(), synthetic('many-small'), synthetic('large-square-gpu')];
for (const w of args.quick ? workloads.slice(0, 1) : workloads) {
  for (const k of [1, 5]) {
    const { medianMs: ms, bytes } = timeDeviceStep(addon, device, w.shapes, k);
    const gbs = bytes / (ms * 1e-3) / 1e9;
    timings.push({
      workload: w.name,
      layers: w.shapes.length,
      iterations: k,
      medianMs: ms,
      bytes,
      gbPerS: gbs,
      fractionOfCopy: gbs / (copyBandwidth / 1e9),
    });
    console.log(
      `  ${w.name.padEnd(24)} k=${k}: ${ms.toFixed(3)} ms, ${gbs.toFixed(0)} GB/s, ${((100 * gbs) / (copyBandwidth / 1e9)).toFixed(0)}% of copy`,
    );
  }
}

const file = path.join(resultsDir(args.out), `cuda-workbench-${new Date().toISOString().slice(0, 10)}.json`);
fs.writeFileSync(
  file,
  JSON.stringify(
    {
      command: `node ${process.argv.slice(1).join(' ')}`,
      date: new Date().toISOString(),
      machine: machine(),
      devices: info.cuda.devices,
      driverVersion: info.cuda.driverVersion,
      runtimeVersion: info.cuda.runtimeVersion,
      reference,
      checksPassed: checks.length,
      failures,
      copyBandwidthBytesPerS: copyBandwidth,
      timings,
    },
    null,
    2,
  ),
);
console.log(`wrote ${file}`);
// exitCode, not exit(): a natural exit runs the addon's cleanup hook, which frees its device memory (compute-sanitizer
// --leak-check full counts what is still held then).
process.exitCode = failures.length ? 1 : 0;
