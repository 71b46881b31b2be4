// npm run bench:tfjs: one training step of the SNGAN CIFAR-10 discriminator (bench/networks.json's
// sngan-cnn-cifar10-d, batch 16) on the tfjs cpu and wasm backends, in three variants: no SN; SN with
// spectral-norm/tfjs's layer and callback (the power iteration in this library's engine); SN with the pure-tf-ops
// reference (test/support/tfjs-reference.ts, Keras 3's algorithm). The goal (issue 15): an SN overhead at least 3×
// smaller with the engine than with tf ops. Two measures of it:
// - by difference: a variant's median step time minus the no-SN median. The SN work is about 1% of a step here, so
//   this difference is at the mercy of the step's noise;
// - alone: the SN work of one step timed by itself, outside the model, with the same calls as in the step (ours:
//   the callback's batched iteration, then every layer's W/σ and its gradient; the reference: every layer's power
//   iteration in tf ops, then W/σ and its gradient through tfjs's autodiff).
// Steps are timed in interleaved rounds after one warm-up step per variant, so that a shared machine's drifts hit
// the variants alike. Both backends train conv2d with bench/tfjs-filter-gradient.ts's Conv2DBackpropFilter (wasm has
// none; cpu's own takes about a minute per layer here): the same for all three variants, and no part of SN.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

import * as tf from '@tensorflow/tfjs';

import { SpectralNormCallback, SpectralNormalization } from '../lib/tfjs';
import { kernelAttribute, kernelVariable } from '../lib/tfjs/kernel';
import { type EngineNormalized, divideBySigma, engineDivided } from '../lib/tfjs/normalized-kernel';
import { TfOpsSpectralNormalization, referenceNormalized, referencePowerIteration } from '../test/support/tfjs-reference';
import { useFilterGradient, wasmBackend } from './tfjs-filter-gradient';
import { writeRecord } from './machine';
import { fixedWeight, resultsDir } from './networks';
import { summarize } from './timing';

type Variant = 'no SN' | 'SN: spectral-norm/tfjs' | 'SN: tf ops';
const VARIANTS: Variant[] = ['no SN', 'SN: spectral-norm/tfjs', 'SN: tf ops'];
const NETWORK = 'sngan-cnn-cifar10-d';
const BATCH = 16;

/** The discriminator's layer shapes, PyTorch's layout: conv [out, in, kh, kw], linear [out, in]. */
function networkShapes(): number[][] {
  const file = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'bench', 'networks.json'), 'utf8')) as {
    networks: { name: string; layers: { shape: number[] }[] }[];
  };
  const network = file.networks.find((n) => n.name === NETWORK);
  if (network === undefined) throw new Error(`bench/networks.json has no network '${NETWORK}'`);
  return network.layers.map((l) => l.shape);
}

/**
 * Miyato et al. 2018, Table 3: 3×3 convolutions of stride 1 and 4×4 ones of stride 2 ('same' padding: 32 → 16 → 8
 * → 4), leaky ReLU 0.1, then a dense layer to one logit.
 */
function discriminator(variant: Variant, shapes: number[][], image: number): tf.Sequential {
  let index = 0;
  const wrap = (layer: tf.layers.Layer): tf.layers.Layer => {
    const seed = 1000 + index++;
    if (variant === 'no SN') return layer;
    if (variant === 'SN: spectral-norm/tfjs') return new SpectralNormalization({ layer, seed });
    const units = (layer.getConfig().filters ?? layer.getConfig().units) as number;
    const u0 = Float32Array.from(fixedWeight('float32', units, seed));
    return new TfOpsSpectralNormalization({ layer, u0 });
  };
  const layers: tf.layers.Layer[] = [];
  for (const [i, shape] of shapes.entries()) {
    if (shape.length === 4) {
      const [filters, , kernelSize] = shape;
      const conv = tf.layers.conv2d({
        filters,
        kernelSize,
        strides: kernelSize === 4 ? 2 : 1,
        padding: 'same',
        ...(i === 0 ? { inputShape: [image, image, shape[1]] } : {}),
      });
      layers.push(wrap(conv), tf.layers.leakyReLU({ alpha: 0.1 }));
    } else {
      layers.push(tf.layers.flatten(), wrap(tf.layers.dense({ units: shape[0] })));
    }
  }
  const model = tf.sequential({ layers });
  model.compile({ optimizer: tf.train.adam(2e-4, 0.5, 0.999), loss: tf.losses.sigmoidCrossEntropy });
  return model;
}

interface Contender {
  variant: Variant;
  step: () => Promise<void>;
  /** The SN work of one step by itself, outside the model (see the header); null for no SN. */
  snWork: (() => void) | null;
}

const BY_NAME = (name: string) => (w: tf.LayerVariable) => w.originalName === name || w.originalName.endsWith(`/${name}`);

/** The kernel variable a wrapper normalizes. */
function kernelOf(layer: SpectralNormalization | TfOpsSpectralNormalization): tf.LayerVariable {
  return kernelVariable(layer.layer, kernelAttribute(layer.layer));
}

/** A wrapper's u and v weights. */
function vectorsOf(layer: SpectralNormalization | TfOpsSpectralNormalization): { u: tf.LayerVariable; v: tf.LayerVariable } {
  return {
    u: layer.nonTrainableWeights.find(BY_NAME('u')) as tf.LayerVariable,
    v: layer.nonTrainableWeights.find(BY_NAME('v')) as tf.LayerVariable,
  };
}

/** A random upstream gradient for each wrapper's W/σ (dloss / d(W/σ) in a step), drawn once. */
function upstreamGradients(layers: (SpectralNormalization | TfOpsSpectralNormalization)[]): tf.Tensor[] {
  return layers.map((layer, i) => tf.randomNormal(kernelOf(layer).shape as number[], 0, 1e-3, 'float32', 77 + i));
}

/** Ours: the callback's batched iteration, then each layer's W/σ from it (engineDivided, as call() does) and its gradient. */
function engineSnWork(model: tf.Sequential, callback: SpectralNormCallback): () => void {
  const layers = model.layers.filter((l): l is SpectralNormalization => l instanceof SpectralNormalization);
  const upstream = upstreamGradients(layers);
  return () => {
    callback.powerIteration();
    tf.tidy(() => {
      layers.forEach((layer, i) => {
        // What the callback handed the layer for this step (the layer keeps it in a private field until its call).
        const normalized = (layer as unknown as { ahead: EngineNormalized }).ahead;
        // As call() does: the engine's W/σ where the layer uses it on this backend, else W/σ in tf ops.
        const { u, v } = vectorsOf(layer);
        const divided = (kernel: tf.Tensor) =>
          layer.usesEngine ? engineDivided(kernel, normalized, layer.eps) : divideBySigma(kernel, u.read(), v.read(), layer.eps);
        tf.grad(divided)(kernelOf(layer).read(), upstream[i]);
      });
    });
    for (const layer of layers) layer.forgetIteration();
  };
}

/** The reference: each layer's power iteration in tf ops (u and v written, as its call() does), then W/σ and its gradient. */
function tfOpsSnWork(model: tf.Sequential): () => void {
  const layers = model.layers.filter((l): l is TfOpsSpectralNormalization => l instanceof TfOpsSpectralNormalization);
  const upstream = upstreamGradients(layers);
  const vectors = layers.map((layer) => ({ kernel: kernelOf(layer), ...vectorsOf(layer) }));
  return () => {
    layers.forEach((layer, i) => {
      const { kernel, u, v } = vectors[i];
      tf.tidy(() => {
        const next = referencePowerIteration(kernel.read(), u.read(), layer.powerIterations, layer.eps);
        u.write(next.u);
        v.write(next.v);
      });
      tf.tidy(() => {
        tf.grad((k) => referenceNormalized(k, u.read(), v.read()))(kernel.read(), upstream[i]);
      });
    });
  };
}

function contender(variant: Variant, shapes: number[][], image: number, x: tf.Tensor, y: tf.Tensor): Contender {
  const model = discriminator(variant, shapes, image);
  const callback = variant === 'SN: spectral-norm/tfjs' ? new SpectralNormCallback() : null;
  callback?.setModel(model);
  const snWork = callback !== null ? engineSnWork(model, callback) : variant === 'SN: tf ops' ? tfOpsSnWork(model) : null;
  return {
    variant,
    step: async () => {
      // What model.fit does per batch: the callback's onBatchBegin (every layer's iteration in one engine call),
      // then the training step.
      callback?.powerIteration();
      await model.trainOnBatch(x, y);
    },
    snWork,
  };
}

function elapsedMs(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function timeStep(c: Contender): Promise<number> {
  const start = process.hrtime.bigint();
  await c.step();
  return elapsedMs(start);
}

function timeSnWork(c: Contender): number {
  const start = process.hrtime.bigint();
  c.snWork?.();
  return elapsedMs(start);
}

const write = (text: string) => process.stdout.write(text);
const ms = (t: number) => (t >= 100 ? t.toFixed(0) : t.toFixed(1));
const spread = (s: { medianMs: number; minMs: number; maxMs: number }) => `${ms(s.medianMs)} [${ms(s.minMs)}, ${ms(s.maxMs)}]`;

interface Settings {
  rounds: number;
  snRepeats: number;
  image: number;
  filterGradient: string;
}

async function benchBackend(backend: string, shapes: number[][], settings: Settings) {
  const { rounds, snRepeats, image } = settings;
  if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
  console.log(
    `\n${backend} backend: ${NETWORK}, batch ${BATCH}, ${image}×${image} images; Conv2DBackpropFilter: ${settings.filterGradient}`,
  );
  const x = tf.randomUniform([BATCH, image, image, shapes[0][1]], -1, 1, 'float32', 1);
  const y = tf.concat([tf.ones([BATCH / 2, 1]), tf.zeros([BATCH / 2, 1])]);
  const contenders = VARIANTS.map((variant) => contender(variant, shapes, image, x, y));
  // Warm-up, not counted: optimizer slots, the first run of each kernel, the JIT.
  write('  warm-up step (not counted):');
  for (const c of contenders) write(` ${c.variant} ${ms(await timeStep(c))} ms;`);
  for (let r = 0; r < snRepeats; r++) for (const c of contenders) c.snWork?.();
  write('\n');
  const steps = contenders.map(() => [] as number[]);
  const alone = contenders.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    write(`  round ${round + 1}/${rounds}, step:`);
    for (const [i, c] of contenders.entries()) {
      steps[i].push(await timeStep(c));
      write(` ${c.variant} ${ms(steps[i][round])} ms;`);
    }
    write(' SN work alone (median of this round):');
    const sn = contenders.map(() => [] as number[]);
    for (let r = 0; r < snRepeats; r++) for (const [i, c] of contenders.entries()) if (c.snWork) sn[i].push(timeSnWork(c));
    for (const [i, c] of contenders.entries()) {
      if (!c.snWork) continue;
      alone[i].push(...sn[i]);
      write(` ${c.variant} ${ms(summarize(sn[i]).medianMs)} ms;`);
    }
    write('\n');
  }
  const stepStats = contenders.map((c, i) => ({ variant: c.variant, ...summarize(steps[i]) }));
  // Each round's SN step minus that round's no-SN step: the spread of the overhead by difference.
  const differences = contenders.map((_, i) => summarize(steps[i].map((t, round) => t - steps[0][round])));
  const aloneStats = contenders.map((c, i) => (c.snWork ? { variant: c.variant, ...summarize(alone[i]) } : null));
  const [, engine, tfOps] = [0, 1, 2];
  const result = {
    backend,
    image: [image, image],
    rounds,
    steps: stepStats,
    stepTimesMs: Object.fromEntries(contenders.map((c, i) => [c.variant, steps[i]])),
    snOverheadByDifferenceMs: { engine: differences[engine], tfOps: differences[tfOps] },
    snWorkAloneMs: { engine: aloneStats[engine], tfOps: aloneStats[tfOps] },
    tfOpsOverEngine: {
      // Only where both medians are above 0; otherwise the steps' noise hides the SN work (null).
      byDifference:
        differences[engine].medianMs > 0 && differences[tfOps].medianMs > 0
          ? differences[tfOps].medianMs / differences[engine].medianMs
          : null,
      alone: (aloneStats[tfOps]?.medianMs ?? NaN) / (aloneStats[engine]?.medianMs ?? NaN),
    },
  };
  console.log(`  ${backend}, ${image}×${image}: median [min, max] over ${rounds} rounds, ms`);
  for (const [i, s] of stepStats.entries()) {
    const extra = i === 0 ? '' : `   step − no-SN step (same round): ${spread(differences[i])}`;
    console.log(`    step, ${s.variant.padEnd(24)} ${spread(s)}${extra}`);
  }
  for (const s of aloneStats) if (s) console.log(`    SN work alone, ${s.variant.padEnd(24)} ${spread(s)}   (${s.samples} samples)`);
  console.log(
    `  ${backend}: tf-ops SN overhead / engine SN overhead = ${result.tfOpsOverEngine.alone.toFixed(2)} timed alone; ` +
      (result.tfOpsOverEngine.byDifference === null
        ? 'by difference of steps: not measurable (a median difference ≤ 0: the steps vary more than SN costs)'
        : `${result.tfOpsOverEngine.byDifference.toFixed(2)} by difference of steps (their spread above: read it with care)`) +
      ' (goal ≥ 3)',
  );
  tf.dispose([x, y]);
  return result;
}

/** --rounds: 'N' for every backend, or 'backend=N,…' (a backend not named gets 5). */
function parseRounds(text: string, positive: (name: string, text: string) => number): (backend: string) => number {
  if (!text.includes('=')) {
    const n = positive('rounds', text);
    return () => n;
  }
  const perBackend = new Map<string, number>();
  for (const entry of text.split(',')) {
    const [backend, n] = entry.split('=');
    perBackend.set(backend.trim(), positive(`rounds (${backend.trim()})`, n ?? ''));
  }
  return (backend) => perBackend.get(backend) ?? 5;
}

async function main(): Promise<void> {
  const started = process.hrtime.bigint();
  const { values } = parseArgs({
    options: {
      // N for every backend, or backend=N,…; a cpu step takes seconds, a wasm one a fraction of that.
      rounds: { type: 'string', default: 'cpu=5,wasm=20' },
      // Samples of the SN work alone per variant per round (it takes milliseconds, a step seconds).
      'sn-repeats': { type: 'string', default: '5' },
      // The kernels, and so the SN work, do not depend on it; the convolutions' cost does (the dense layer's input
      // is (image / 8)² · 512 rather than 8192). Below 32 it is no longer the configuration: for a machine
      // too slow to run 32×32 steps in the time.
      image: { type: 'string', default: '32' },
      backends: { type: 'string', default: 'cpu,wasm' },
      // Train with tfjs cpu's own Conv2DBackpropFilter (about a minute per conv layer on a 2-vCPU machine).
      'tfjs-cpu-filter-gradient': { type: 'boolean', default: false },
      out: { type: 'string' },
    },
  });
  const positive = (name: string, text: string) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${text}`);
    return n;
  };
  const roundsOf = parseRounds(values.rounds, positive);
  const snRepeats = positive('sn-repeats', values['sn-repeats']);
  const image = Number(values.image);
  if (!Number.isInteger(image) || image < 8 || image % 8 !== 0)
    throw new RangeError(`--image must be a multiple of 8, got ${values.image}`);
  const shapes = networkShapes();
  const standIn = 'im2col + BatchMatMul (bench/tfjs-filter-gradient.ts)';
  const filterGradients: Record<string, string> = {};
  const results = [];
  const skipped: Record<string, string> = {};
  for (const backend of values.backends.split(',')) {
    if (backend === 'wasm') {
      const unavailable = await wasmBackend();
      if (unavailable !== null) {
        console.log(`wasm backend skipped: ${unavailable}`);
        skipped.wasm = unavailable;
        continue;
      }
    }
    const keepOwn = backend === 'cpu' && values['tfjs-cpu-filter-gradient'];
    if (!keepOwn) useFilterGradient(backend, { replace: true });
    filterGradients[backend] = keepOwn ? "tfjs cpu's own" : standIn;
    const rounds = roundsOf(backend);
    results.push(await benchBackend(backend, shapes, { rounds, snRepeats, image, filterGradient: filterGradients[backend] }));
  }
  const seconds = elapsedMs(started) / 1000;
  console.log(`\nbench:tfjs took ${seconds.toFixed(0)} s`);
  writeRecord(resultsDir(values.out), 'tfjs-layer', 'bench:tfjs', {
    network: NETWORK,
    batch: BATCH,
    image: [image, image],
    snRepeats,
    filterGradients,
    seconds,
    versions: { '@tensorflow/tfjs': tf.version.tfjs },
    note:
      'Steps timed in one process, variants interleaved, after one warm-up step each. SN overhead by difference: ' +
      "each round's SN step minus that round's no-SN step. SN work alone: one step's SN work outside the model " +
      "(ours: SpectralNormCallback.powerIteration() and every layer's engineDivided W/σ and its gradient; tf ops: " +
      "every layer's referencePowerIteration and referenceNormalized with its gradient), snRepeats samples per round.",
    skipped,
    results,
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
