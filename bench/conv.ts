// npm run bench:conv: convolution operator norms on the conv layers of bench/networks.json at their real input sizes.
//
// Per layer, with a fixed pseudo-random float32 kernel:
// - the layer as it is (zeros padding, its stride): convSpectralNorm's σ, certified [lower, upper] and the gap
//   upper/lower − 1, and its time;
// - the FFT method like for like: the layer's kernel as a circular convolution with stride 1 on the same input
//   (padding (k−1)/2, odd kernels only: an even kernel has no symmetric padding whose outputs are the circulant's
//   rows), ours (convSpectralNorm, exact) against numpy's batched fft2 then np.linalg.norm(·, 2) per frequency
//   (bench/peers/conv_fft.py), σ compared;
// - one real-SN normalizer step (k=1: conv, conv-transpose, W/σ) against PyTorch CPU's conv2d + conv_transpose2d on
//   one image, when python3 can import torch (else the reason is printed and recorded).
// Goals (issue 14): ours ≥ 3× numpy's FFT method; the step no slower than PyTorch's two convolutions.
//
//   npm run bench:conv -- [--networks a,b] [--out DIR] [--python python3] [--backend cpu|js] [--no-numpy]
//                         [--numpy-threads N] [--skip-numpy-above WORK]
// --numpy-threads sets OPENBLAS_NUM_THREADS (and OMP_/MKL_) for the numpy peer: on 2 loaded vCPUs, OpenBLAS's default
// threads made one 128×128 SVD per frequency ~50× slower than one thread. --skip-numpy-above leaves numpy out on
// layers whose SVD work, frequencies × cout·cin·min(cout, cin), exceeds WORK (BigGAN's deep layers would take it
// hours); each skipped layer is printed and recorded.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import { SpectralNormalizer, convSpectralNorm, spectralNorm } from '../lib';
import { writeRecord } from './machine';
import { fixedWeight, networks, resultsDir } from './networks';

const { values: args } = parseArgs({
  options: {
    networks: { type: 'string' },
    out: { type: 'string' },
    python: { type: 'string', default: 'python3' },
    backend: { type: 'string', default: 'cpu' },
    'no-numpy': { type: 'boolean', default: false },
    'numpy-threads': { type: 'string' },
    'skip-numpy-above': { type: 'string' },
  },
});
const ROOT = path.resolve(__dirname, '..', '..');
const backend = args.backend as 'cpu' | 'js';

interface Geometry {
  inputSize: [number, number];
  stride: number;
  padding: number;
}

// Input sizes, strides and paddings of each conv layer, from the architectures cited in bench/networks.json:
// SNGAN's ResNet discriminator (32×32; the first block's shortcut sits after its average pooling, the others before),
// SNGAN's standard CNN (4×4 stride-2 convolutions halve the size), BigGAN-128's discriminator (ch=96; block 0 pools
// before its shortcut, the later blocks after; attention at 64×64).
const GEOMETRY: Record<string, Record<string, Geometry>> = {
  'sngan-resnet-cifar10-d': {
    'block1.conv1': { inputSize: [32, 32], stride: 1, padding: 1 },
    'block1.conv2': { inputSize: [32, 32], stride: 1, padding: 1 },
    'block1.shortcut': { inputSize: [16, 16], stride: 1, padding: 0 },
    'block2.conv1': { inputSize: [16, 16], stride: 1, padding: 1 },
    'block2.conv2': { inputSize: [16, 16], stride: 1, padding: 1 },
    'block2.shortcut': { inputSize: [16, 16], stride: 1, padding: 0 },
    'block3.conv1': { inputSize: [8, 8], stride: 1, padding: 1 },
    'block3.conv2': { inputSize: [8, 8], stride: 1, padding: 1 },
    'block4.conv1': { inputSize: [8, 8], stride: 1, padding: 1 },
    'block4.conv2': { inputSize: [8, 8], stride: 1, padding: 1 },
  },
  'sngan-cnn-cifar10-d': {
    conv0: { inputSize: [32, 32], stride: 1, padding: 1 },
    conv1: { inputSize: [32, 32], stride: 2, padding: 1 },
    conv2: { inputSize: [16, 16], stride: 1, padding: 1 },
    conv3: { inputSize: [16, 16], stride: 2, padding: 1 },
    conv4: { inputSize: [8, 8], stride: 1, padding: 1 },
    conv5: { inputSize: [8, 8], stride: 2, padding: 1 },
    conv6: { inputSize: [4, 4], stride: 1, padding: 1 },
  },
  'biggan-128-d': {
    'blocks.0.conv1': { inputSize: [128, 128], stride: 1, padding: 1 },
    'blocks.0.conv2': { inputSize: [128, 128], stride: 1, padding: 1 },
    'blocks.0.conv_sc': { inputSize: [64, 64], stride: 1, padding: 0 },
    'attention.theta': { inputSize: [64, 64], stride: 1, padding: 0 },
    'attention.phi': { inputSize: [64, 64], stride: 1, padding: 0 },
    'attention.g': { inputSize: [64, 64], stride: 1, padding: 0 },
    'attention.o': { inputSize: [64, 64], stride: 1, padding: 0 },
    'blocks.1.conv1': { inputSize: [64, 64], stride: 1, padding: 1 },
    'blocks.1.conv2': { inputSize: [64, 64], stride: 1, padding: 1 },
    'blocks.1.conv_sc': { inputSize: [64, 64], stride: 1, padding: 0 },
    'blocks.2.conv1': { inputSize: [32, 32], stride: 1, padding: 1 },
    'blocks.2.conv2': { inputSize: [32, 32], stride: 1, padding: 1 },
    'blocks.2.conv_sc': { inputSize: [32, 32], stride: 1, padding: 0 },
    'blocks.3.conv1': { inputSize: [16, 16], stride: 1, padding: 1 },
    'blocks.3.conv2': { inputSize: [16, 16], stride: 1, padding: 1 },
    'blocks.3.conv_sc': { inputSize: [16, 16], stride: 1, padding: 0 },
    'blocks.4.conv1': { inputSize: [8, 8], stride: 1, padding: 1 },
    'blocks.4.conv2': { inputSize: [8, 8], stride: 1, padding: 1 },
    'blocks.4.conv_sc': { inputSize: [8, 8], stride: 1, padding: 0 },
    'blocks.5.conv1': { inputSize: [4, 4], stride: 1, padding: 1 },
    'blocks.5.conv2': { inputSize: [4, 4], stride: 1, padding: 1 },
  },
};

/** Median wall time in ms: one run, then more until about a second is spent (at most 7 samples). */
function time<T>(run: () => T): { medianMs: number; samples: number; value: T } {
  const times: number[] = [];
  let value: T;
  let spent = 0;
  do {
    const start = process.hrtime.bigint();
    value = run();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    times.push(ms);
    spent += ms;
  } while (spent < 1000 && times.length < 7);
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)], samples: times.length, value: value! };
}

interface Layer {
  network: string;
  name: string;
  shape: number[];
  geometry: Geometry;
  weight: Float32Array;
}

const wanted = args.networks?.split(',');
const layers: Layer[] = [];
for (const net of networks()) {
  if (wanted && !wanted.includes(net.name)) continue;
  const raw = JSON.parse(fs.readFileSync(path.join(ROOT, 'bench', 'networks.json'), 'utf8')) as {
    networks: { name: string; layers: { name: string; shape: number[] }[] }[];
  };
  for (const [i, l] of raw.networks.find((n) => n.name === net.name)!.layers.entries()) {
    if (l.shape.length !== 4) continue;
    const geometry = GEOMETRY[net.name]?.[l.name];
    if (!geometry) throw new Error(`bench/conv.ts has no input size for ${net.name} ${l.name}`);
    const weight = fixedWeight(
      'float32',
      l.shape.reduce((a, b) => a * b, 1),
      1000 + i,
    ) as Float32Array;
    layers.push({ network: net.name, name: l.name, shape: l.shape, geometry, weight });
  }
}

// The peers, run once over every layer: each reads the layers' kernels from files written once here.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-conv-'));
const files = layers.map((l, i) => {
  const file = path.join(tmp, `w${i}.f32`);
  fs.writeFileSync(file, l.weight);
  return file;
});
const circularLayers = layers.filter((l) => l.shape[2] % 2 === 1 && l.shape[3] % 2 === 1);

/** numpy's work on a layer: one SVD of cout × cin per frequency. */
const numpyWork = (l: Layer) =>
  l.geometry.inputSize[0] * l.geometry.inputSize[1] * l.shape[0] * l.shape[1] * Math.min(l.shape[0], l.shape[1]);
const numpyLimit = args['skip-numpy-above'] === undefined ? Infinity : Number(args['skip-numpy-above']);
if (!(numpyLimit > 0)) throw new RangeError('--skip-numpy-above must be a positive number');
const numpyThreads = args['numpy-threads'];
if (numpyThreads !== undefined && !/^[1-9][0-9]*$/.test(numpyThreads)) throw new RangeError('--numpy-threads must be a positive integer');
const numpyLayers = circularLayers.filter((l) => numpyWork(l) <= numpyLimit);
for (const l of circularLayers) {
  if (numpyWork(l) > numpyLimit)
    console.log(`numpy skipped on ${l.network} ${l.name}: work ${numpyWork(l).toExponential(2)} > --skip-numpy-above ${numpyLimit}`);
}

/** Runs bench/peers/<script> on `input` (JSON on stdin) and parses its last line, or says why it could not. */
function runPeer<T extends { unavailable?: string }>(script: string, input: unknown, threads?: string): T {
  const env =
    threads === undefined
      ? process.env
      : { ...process.env, OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads, MKL_NUM_THREADS: threads };
  const run = spawnSync(args.python!, [path.join(ROOT, 'bench', 'peers', script)], {
    env,
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return run.status === 0
    ? (JSON.parse(run.stdout.trim().split('\n').pop()!) as T)
    : ({ unavailable: `${args.python} bench/peers/${script} failed: ${(run.stderr || String(run.error)).slice(-300)}` } as T);
}

let numpy: { numpy?: string; unavailable?: string; layers?: { sigma: number; medianMs: number; samples: number }[] };
if (args['no-numpy']) numpy = { unavailable: '--no-numpy' };
else {
  console.log(`numpy: the FFT method on ${numpyLayers.length} layers, ${numpyThreads ?? "numpy's default"} BLAS threads …`);
  numpy = runPeer(
    'conv_fft.py',
    numpyLayers.map((l) => ({ file: files[layers.indexOf(l)], shape: l.shape, inputSize: l.geometry.inputSize, repeats: 3 })),
    numpyThreads,
  );
}
if (numpy.unavailable) console.log(`numpy skipped: ${numpy.unavailable}`);

console.log(`torch: conv2d + conv_transpose2d on one image, ${layers.length} layers …`);
const torch: { torch?: string; threads?: number; unavailable?: string; layers?: { medianMs: number; minMs: number }[] } = runPeer(
  'conv_torch_step.py',
  layers.map((l, i) => ({ file: files[i], shape: l.shape, ...l.geometry, repeats: 15 })),
);
if (torch.unavailable)
  console.log(`torch skipped: ${torch.unavailable} (Debian: apt-get install python3-torch; --python /usr/bin/python3)`);
fs.rmSync(tmp, { recursive: true, force: true });

const rows: Record<string, unknown>[] = [];
for (const l of layers) {
  const { inputSize, stride, padding } = l.geometry;
  const real = time(() => convSpectralNorm(l.weight, l.shape, { inputSize, stride, padding, backend }));
  const reshaped = spectralNorm(l.weight, l.shape, { backend, certify: true });
  const row: Record<string, unknown> = {
    network: l.network,
    layer: l.name,
    shape: l.shape,
    ...l.geometry,
    reshapedSigma: reshaped.sigma,
    operator: {
      sigma: real.value.sigma,
      lower: real.value.lower,
      upper: real.value.upper,
      gap: real.value.upper / real.value.lower - 1,
      method: real.value.method,
      iterations: real.value.iterations,
      converged: real.value.converged,
      ms: real.medianMs,
    },
  };
  const k = circularLayers.indexOf(l);
  if (k >= 0) {
    const circular = time(() =>
      convSpectralNorm(l.weight, l.shape, {
        inputSize,
        padding: [(l.shape[2] - 1) / 2, (l.shape[3] - 1) / 2],
        paddingMode: 'circular',
        backend,
      }),
    );
    const peer = numpy.layers?.[numpyLayers.indexOf(l)];
    row.fft = {
      method: circular.value.method,
      sigma: circular.value.sigma,
      gap: circular.value.upper / circular.value.lower - 1,
      ms: circular.medianMs,
      numpySkipped: numpyWork(l) > numpyLimit ? `work ${numpyWork(l)} > --skip-numpy-above ${numpyLimit}` : undefined,
      numpySigma: peer?.sigma ?? null,
      numpyMs: peer?.medianMs ?? null,
      speedupVsNumpy: peer ? peer.medianMs / circular.medianMs : null,
    };
  }
  const sn = new SpectralNormalizer(l.shape, { operator: { kind: 'conv2d', inputSize, stride, padding }, backend, seed: 1 });
  const out = new Float32Array(l.weight.length);
  const step = time(() => sn.step(l.weight, { out }));
  row.stepMs = step.medianMs;
  const torchStep = torch.layers?.[layers.indexOf(l)];
  row.torchStepMs = torchStep?.medianMs ?? null;
  row.stepVsTorch = torchStep ? torchStep.medianMs / step.medianMs : null;
  rows.push(row);
  const f = row.fft as { ms: number; numpyMs: number | null; numpySkipped?: string } | undefined;
  const versus = (ours: number, theirs: number) => `${theirs.toFixed(1)} ms (${(theirs / ours).toFixed(2)}×)`;
  console.log(
    `${l.network} ${l.name} ${JSON.stringify(l.shape)} @${inputSize.join('×')} s${stride} p${padding}: ` +
      `reshaped σ ${reshaped.sigma.toFixed(4)}, operator σ ${real.value.sigma.toFixed(4)} ≤ ${real.value.upper.toFixed(4)} ` +
      `(gap ${((real.value.upper / real.value.lower - 1) * 100).toFixed(2)}%, ${real.value.method}, ${real.medianMs.toFixed(1)} ms)` +
      (f
        ? `; circular FFT ${f.ms.toFixed(1)} ms vs numpy ${f.numpyMs !== null ? versus(f.ms, f.numpyMs) : f.numpySkipped ? 'skipped' : '—'}`
        : '') +
      `; step ${step.medianMs.toFixed(2)} ms` +
      (torchStep ? ` vs torch ${torchStep.medianMs.toFixed(2)} ms (${(torchStep.medianMs / step.medianMs).toFixed(2)}×)` : ''),
  );
}

writeRecord(resultsDir(args.out), 'conv', 'bench:conv', {
  note: `load average at the end: ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}`,
  backend,
  numpy: numpy.numpy ?? numpy.unavailable,
  numpyThreads: numpyThreads ?? "numpy's default",
  skipNumpyAbove: Number.isFinite(numpyLimit) ? numpyLimit : null,
  torch: torch.torch ? { version: torch.torch, threads: torch.threads } : torch.unavailable,
  rows,
});
