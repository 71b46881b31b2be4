// `npm run bench:gpu`: the GPU benchmark, everything measured side by side in one run on one GPU.
//
//   1. The device's own limits: device-to-device copy and streaming read bandwidth (CUDA events), and what cudaProbe
//      gives the 'auto' cost model (pinned host↔device bandwidth, launch latency).
//   2. One SN step (k power iterations and W/σ on every layer, float32) of each network in bench/networks.json, 256
//      small layers and 8192×8192, k = 1 and 5: ours on device-resident weights (CUDA events), against PyTorch's
//      parametrized spectral_norm eager and replayed from a CUDA graph (CUDA events) and a jitted JAX step
//      (bench/peers/gpu_peers.py). Fractions of the copy and of the read bandwidth, bytes counted as (k + 2)·|W|.
//   3. Issue 12's table: host Float32Arrays with `out`, median wall-clock ms per batch step, on the cpu backend, cuda
//      with host arrays, cuda with device handles, and 'auto' (the public API's choice); each row's best, and whether
//      'auto' is within 10% of it. Host arrays on cuda against the pinned host-to-device bandwidth.
//   4. With --tune, the two large workloads under a few SN_CUDA_TUNING variants (child processes).
// Writes gpu-bench-<date>.json (card, driver, date, command) and a chart next to it.
//
//   node dist/bench/gpu-bench.js [--out DIR] [--python python3] [--quick] [--tune] [--no-peers] [--peer-timeout SECONDS]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { SpectralNormBatch, backendInfo } from '../lib';
import { nativeAddon } from '../lib/backends';
import { timeDeviceStep } from './device-step-timing';
import { renderChart } from './gpu-chart';
import { machine } from './machine';
import { elements, fixedWeight, networks, resultsDir, synthetic } from './networks';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    quick: { type: 'boolean', default: false },
    tune: { type: 'boolean', default: false },
    'no-peers': { type: 'boolean', default: false },
    'peer-timeout': { type: 'string', default: '240' },
    'tune-child': { type: 'string' },
  },
});
const ROOT = path.resolve(__dirname, '..', '..');
const info = backendInfo();
if (!info.cuda.available) {
  console.error(`bench:gpu: the cuda backend is unavailable: ${info.cuda.reason}`);
  process.exit(1);
}
const addon = nativeAddon()!;
const device = 0;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

// --tune-child: one workload under this process's SN_CUDA_TUNING; prints the median ms (CUDA events) as JSON.
if (args['tune-child']) {
  const w =
    args['tune-child'] === 'large-square-gpu' ? synthetic('large-square-gpu') : networks().find((n) => n.name === args['tune-child'])!;
  console.log(JSON.stringify({ tuning: process.env.SN_CUDA_TUNING ?? '', ...timeDeviceStep(addon, device, w.shapes, 1) }));
  process.exit(0);
}

// ---- 1. the device's limits ----------------------------------------------------------------------------------------
const copyBandwidth = addon.internal.cudaCopyBandwidth(device, 1 << 30, 20);
const readBandwidth = addon.internal.cudaReadBandwidth(device, 1 << 30, 20);
const probeStart = performance.now();
const probe = addon.cudaProbe(device);
const probeMs = performance.now() - probeStart;
const gb = (x: number) => (x / 1e9).toFixed(0);
console.log(
  `${info.cuda.devices[device].name} (driver ${info.cuda.driverVersion}): copy ${gb(copyBandwidth)} GB/s, read ` +
    `${gb(readBandwidth)} GB/s; probe in ${probeMs.toFixed(1)} ms: pinned H2D ${gb(probe.hostToDeviceBytesPerSecond)} GB/s, ` +
    `D2H ${gb(probe.deviceToHostBytesPerSecond)} GB/s, launch+sync ${(probe.launchSeconds * 1e6).toFixed(1)} µs`,
);

// ---- 2. ours against the GPU peers ---------------------------------------------------------------------------------
const workloads = [...networks(), synthetic('many-small'), synthetic('large-square-gpu')];
const chosen = args.quick ? workloads.filter((w) => w.name === 'sngan-resnet-cifar10-d' || w.name === 'large-square-gpu') : workloads;
const ours = chosen.flatMap((w) => [1, 5].map((k) => ({ workload: w.name, iterations: k, ...timeDeviceStep(addon, device, w.shapes, k) })));

type PeerResult = { workload: string; iterations: number; eagerMs?: number; graphMs?: number; jitMs?: number };
type Peer = { results?: PeerResult[]; error?: string; [key: string]: unknown };
function peer(name: 'torch' | 'jax'): Peer {
  if (args['no-peers']) return { error: 'skipped (--no-peers)' };
  const run = spawnSync(
    args.python,
    [path.join(ROOT, 'bench', 'peers', 'gpu_peers.py'), name, path.join(ROOT, 'bench', 'networks.json'), ...chosen.map((w) => w.name)],
    { encoding: 'utf8', maxBuffer: 16 << 20, timeout: 1000 * Number(args['peer-timeout']) },
  );
  try {
    return JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as Peer;
  } catch {
    return { error: `${args.python} gpu_peers.py ${name} failed: ${(run.stderr || String(run.error)).slice(-400)}` };
  }
}
const torch = peer('torch');
const jax = peer('jax');
const find = (p: Peer, w: string, k: number) => p.results?.find((r) => r.workload === w && r.iterations === k);

const rows = ours.map((o) => {
  const t = find(torch, o.workload, o.iterations);
  const j = find(jax, o.workload, o.iterations);
  const strongest = Math.min(...[t?.graphMs, t?.eagerMs, j?.jitMs].filter((x): x is number => x !== undefined));
  const gbs = o.bytes / (o.medianMs * 1e-3) / 1e9;
  return {
    ...o,
    gbPerS: gbs,
    fractionOfCopy: (gbs * 1e9) / copyBandwidth,
    fractionOfRead: (gbs * 1e9) / readBandwidth,
    torchEagerMs: t?.eagerMs ?? null,
    torchGraphMs: t?.graphMs ?? null,
    jaxJitMs: j?.jitMs ?? null,
    speedupVsStrongestPeer: Number.isFinite(strongest) ? strongest / o.medianMs : null,
  };
});
console.log(
  `\nours (device handles, CUDA events) against PyTorch (${torch.torch ?? torch.error}) and JAX (${jax.jax ?? jax.error}), ms per step:`,
);
console.log('  workload                  k    ours  %copy  %read  torch-eager  torch-graph  jax-jit  vs best peer');
const f = (x: number | null, d = 3) => (x === null ? '-' : x.toFixed(d));
for (const r of rows) {
  console.log(
    `  ${r.workload.padEnd(24)} ${String(r.iterations).padStart(2)} ${r.medianMs.toFixed(3).padStart(7)} ${(100 * r.fractionOfCopy).toFixed(0).padStart(5)}% ` +
      `${(100 * r.fractionOfRead).toFixed(0).padStart(5)}% ${f(r.torchEagerMs).padStart(12)} ${f(r.torchGraphMs).padStart(12)} ${f(r.jaxJitMs).padStart(8)} ` +
      `${r.speedupVsStrongestPeer === null ? '-' : `${r.speedupVsStrongestPeer.toFixed(2)}x`}`,
  );
}

// ---- 3. issue 12's table: host arrays ------------------------------------------------------------------------------
const table12 = [
  ...networks().filter((n) => n.name !== 'biggan-128-d' || !args.quick),
  synthetic('many-small'),
  { name: 'one 64x64x3x3', shapes: [[64, 64, 3, 3]] },
  { name: 'one 8x8', shapes: [[8, 8]] },
  { name: '512x4608', shapes: [[512, 4608]] },
  ...(args.quick ? [] : [{ name: '8192x8192', shapes: [[8192, 8192]] }]),
];
function wallMs(step: () => void): number {
  const t0 = performance.now();
  step();
  const first = performance.now() - t0;
  const samples = Math.max(5, Math.min(41, Math.floor(600 / Math.max(first, 0.01))));
  for (let i = 0; i < 3; i++) step();
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    step();
    ms.push(performance.now() - t);
  }
  return median(ms);
}
const hostRows = table12.map((w) => {
  const weights = w.shapes.map((s, i) => fixedWeight('float32', elements(s), i + 1));
  const outs = weights.map((x) => new Float32Array(x.length));
  const batchFor = (backend: 'cpu' | 'cuda' | 'auto') =>
    new SpectralNormBatch(
      w.shapes.map((shape, i) => ({ shape, seed: i })),
      { backend, iterations: 1 },
    );
  const timed = (backend: 'cpu' | 'cuda' | 'auto') => {
    const batch = batchFor(backend);
    return { ms: wallMs(() => batch.step(weights, { out: outs })), sigma: batch.step(weights, { out: outs })[0], picked: batch.backend };
  };
  const cpu = info.cpu.available ? timed('cpu') : null;
  const cuda = timed('cuda');
  const auto = timed('auto');
  const handleBatch = batchFor('cuda');
  const handle = handleBatch.toDevice(weights);
  const deviceMs = wallMs(() => handleBatch.step(handle));
  handle.dispose();
  const candidates = [cpu?.ms, cuda.ms, deviceMs].filter((x): x is number => x !== undefined);
  const best = Math.min(...candidates, auto.ms);
  const bytes = 4 * w.shapes.reduce((a, s) => a + elements(s), 0);
  return {
    workload: w.name,
    cpuMs: cpu?.ms ?? null,
    cudaHostArraysMs: cuda.ms,
    cudaDeviceHandlesMs: deviceMs,
    autoMs: auto.ms,
    autoPicked: auto.picked,
    bestMs: best,
    autoWithin10Percent: auto.ms <= 1.1 * best,
    sigmaRelDiffCudaVsCpu: cpu ? Math.abs(cuda.sigma - cpu.sigma) / Math.abs(cpu.sigma) : null,
    // Host arrays on cuda cross the bus once (W up; W/σ is divided on the host): their rate against pinned H2D.
    hostArraysFractionOfPinned: bytes / (cuda.ms * 1e-3) / probe.hostToDeviceBytesPerSecond,
  };
});
console.log('\nissue 12: host Float32Arrays with out, k = 1, median wall ms per batch step:');
console.log('  workload                    cpu   cuda-host  cuda-device     auto (picked)   best  auto ≤ 1.1·best  host vs pinned H2D');
for (const r of hostRows) {
  console.log(
    `  ${r.workload.padEnd(24)} ${f(r.cpuMs).padStart(7)} ${r.cudaHostArraysMs.toFixed(3).padStart(11)} ${r.cudaDeviceHandlesMs.toFixed(3).padStart(12)} ` +
      `${r.autoMs.toFixed(3).padStart(8)} (${r.autoPicked.padEnd(4)}) ${r.bestMs.toFixed(3).padStart(7)} ${(r.autoWithin10Percent ? 'yes' : 'NO').padStart(16)} ` +
      `${(100 * r.hostArraysFractionOfPinned).toFixed(0).padStart(17)}%`,
  );
}

// ---- 4. tuning variants --------------------------------------------------------------------------------------------
const TUNINGS = ['', 'blocksPerSm=2', 'blocksPerSm=8', 'minRowsPerSlot=96', 'maxUnits=2', 'maxCluster=4'];
const tuning = !args.tune
  ? []
  : ['large-square-gpu', 'biggan-128-d'].flatMap((workload) =>
      TUNINGS.map((t) => {
        const run = spawnSync(process.execPath, [__filename, '--tune-child', workload], {
          encoding: 'utf8',
          env: { ...process.env, SN_CUDA_TUNING: t },
          timeout: 60_000,
        });
        try {
          return { workload, ...(JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>) };
        } catch {
          return { workload, tuning: t, error: (run.stderr || String(run.error)).slice(-300) };
        }
      }),
    );
if (tuning.length) {
  console.log('\ntuning variants (k = 1, ms per step, CUDA events):');
  for (const t of tuning)
    console.log(
      `  ${String(t.workload).padEnd(20)} ${String(t.tuning || '(defaults)').padEnd(20)} ${'medianMs' in t ? Number(t.medianMs).toFixed(3) : t.error}`,
    );
}

// ---- results -------------------------------------------------------------------------------------------------------
const dir = resultsDir(args.out);
const base = path.join(dir, `gpu-bench-${new Date().toISOString().slice(0, 10)}`);
fs.writeFileSync(
  `${base}.json`,
  `${JSON.stringify(
    {
      benchmark: 'bench:gpu',
      command: `node ${process.argv.slice(1).join(' ')}`,
      date: new Date().toISOString(),
      machine: machine(),
      device: info.cuda.devices[device],
      driverVersion: info.cuda.driverVersion,
      runtimeVersion: info.cuda.runtimeVersion,
      timing: {
        ours: 'CUDA events on the addon stream around one synchronous step (device-resident weights), median of 31 after 10 warm-up steps',
        torch: 'CUDA events around one eager step, or one CUDA-graph replay, median of 31 after 10 warm-ups',
        jax: 'host clock over 20 back-to-back jitted steps waited for once, divided by 20, median of 9 runs (JAX exposes no CUDA events)',
        hostArrays: 'host clock around batch.step(weights, { out }) (and step(handle) for device handles), median after 3 warm-ups',
      },
      copyBandwidthBytesPerS: copyBandwidth,
      readBandwidthBytesPerS: readBandwidth,
      probe: { ...probe, wallMs: probeMs },
      bytesCounted: '(k + 2)·|W|',
      torch: { version: torch.torch, device: torch.device, error: torch.error },
      jax: { version: jax.jax, device: jax.device, error: jax.error },
      results: rows,
      hostArrays: hostRows,
      tuning,
    },
    null,
    2,
  )}\n`,
);
void renderChart(`${base}.json`).then(
  (files) => console.log(`\nwrote ${base}.json, ${files.join(', ')}`),
  (error: unknown) =>
    console.log(
      `\nwrote ${base}.json (no chart here: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}; ` +
        `render it where vega is installed: node dist/bench/gpu-chart.js ${base}.json)`,
    ),
);
