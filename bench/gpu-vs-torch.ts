// The GPU benchmark: one SN step of each network in bench/networks.json (k power iterations + W/σ on every layer)
// on the cuda backend with device-resident weights, against PyTorch's torch.nn.utils.parametrizations.spectral_norm
// on CUDA tensors on the same GPU (bench/torch_sn.py), both timed with CUDA events in this one run: the median after
// warm-up, k = 1 and 5, plus 8192×8192 and 256 small layers. Also the fraction of the device-to-device copy
// bandwidth, with bytes counted as (k + 2)·|W|. Writes gpu-vs-torch-<date>.json.
//
//   node dist/bench/gpu-vs-torch.js [--out DIR] [--python python3] [--quick]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { backendInfo } from '../lib';
import { nativeAddon } from '../lib/backends';
import { timeDeviceStep } from './device-step-timing';
import { machine } from './machine';
import { networks, resultsDir, synthetic } from './networks';

const { values: args } = parseArgs({
  options: { out: { type: 'string' }, python: { type: 'string', default: 'python3' }, quick: { type: 'boolean', default: false } },
});
const info = backendInfo();
if (!info.cuda.available) {
  console.error(`gpu-vs-torch: the cuda backend is unavailable: ${info.cuda.reason}`);
  process.exit(1);
}
const addon = nativeAddon()!;
const device = 0;
const ROOT = path.resolve(__dirname, '..', '..');

const copyBandwidth = addon.internal.cudaCopyBandwidth(device, 1 << 30, 20);
const ours: { workload: string; iterations: number; medianMs: number; bytes: number }[] = [];
const workloads = [...networks(), synthetic('many-small'), synthetic('large-square-gpu')];
for (const w of args.quick ? workloads.slice(0, 1) : workloads) {
  for (const k of [1, 5]) {
    ours.push({ workload: w.name, iterations: k, ...timeDeviceStep(addon, device, w.shapes, k) });
  }
}

const torchRun = spawnSync(args.python, [path.join(ROOT, 'bench', 'torch_sn.py'), path.join(ROOT, 'bench', 'networks.json'), ...(args.quick ? ['--quick'] : [])], {
  encoding: 'utf8',
  maxBuffer: 16 << 20,
});
let torch: { torch?: string; device?: string; results?: { workload: string; iterations: number; medianMs: number }[]; error?: string } = {};
try {
  torch = JSON.parse(torchRun.stdout.trim().split('\n').pop() ?? '');
} catch {
  torch = { error: `${args.python} bench/torch_sn.py failed: ${(torchRun.stderr || String(torchRun.error)).slice(-500)}` };
}

const rows = ours.map((o) => {
  const t = torch.results?.find((r) => r.workload === o.workload && r.iterations === o.iterations);
  const gbs = o.bytes / (o.medianMs * 1e-3) / 1e9;
  return {
    ...o,
    torchMs: t?.medianMs ?? null,
    speedupVsTorch: t ? t.medianMs / o.medianMs : null,
    gbPerS: gbs,
    fractionOfCopy: gbs / (copyBandwidth / 1e9),
  };
});
console.log(`device ${info.cuda.devices[device].name}, copy ${(copyBandwidth / 1e9).toFixed(0)} GB/s; torch ${torch.torch ?? torch.error}`);
for (const r of rows) {
  console.log(`  ${r.workload.padEnd(24)} k=${r.iterations}: ours ${r.medianMs.toFixed(3)} ms, torch ${r.torchMs?.toFixed(3) ?? '-'} ms, ` +
    `${r.speedupVsTorch?.toFixed(2) ?? '-'}x, ${(100 * r.fractionOfCopy).toFixed(0)}% of copy`);
}
const file = path.join(resultsDir(args.out), `gpu-vs-torch-${new Date().toISOString().slice(0, 10)}.json`);
fs.writeFileSync(file, JSON.stringify({
  command: `node ${process.argv.slice(1).join(' ')}`,
  date: new Date().toISOString(),
  machine: machine(),
  device: info.cuda.devices[device],
  driverVersion: info.cuda.driverVersion,
  timing: 'CUDA events on the addon stream around one synchronous step (device-resident weights), median of 31 after 10 warm-up steps',
  copyBandwidthBytesPerS: copyBandwidth,
  bytesCounted: '(k + 2)·|W|',
  torch: { version: torch.torch, device: torch.device, error: torch.error },
  results: rows,
}, null, 2));
console.log(`wrote ${file}`);
process.exit(torch.error ? 1 : 0);
