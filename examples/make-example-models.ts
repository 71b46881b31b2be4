// Writes the example models `npm start` runs the CLI on, deterministically (same bytes on every run and machine):
// - examples/sngan-d.safetensors: the SNGAN ResNet discriminator for CIFAR-10 (Miyato et al. 2018, ch=128), the
//   `sngan-resnet-cifar10-d` shapes of the project's benchmark networks, in PyTorch layout (out, in, kh, kw), with
//   biases, in float32 (4.2 MB);
// - examples/dcgan-d-tfjs/model.json: a small DCGAN-style discriminator as TensorFlow.js weights, Keras layout
//   (kh, kw, in, out), two shards, one kernel uint8-quantized and one stored as float16, as tfjs-converter writes them.
// Weights are seeded random draws from PyTorch's default initialisation, U(-1/√fan_in, 1/√fan_in): untrained.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { encodeFloat16 } from '../cli/formats/half';
import { encodeSafetensorsFile } from '../cli/formats/safetensors';
import { mulberry32 } from '../lib/seeded-random';

const HERE = path.resolve(__dirname, '..', '..', 'examples');

export const SNGAN_D_LAYERS: { name: string; shape: number[] }[] = [
  { name: 'block1.conv1', shape: [128, 3, 3, 3] },
  { name: 'block1.conv2', shape: [128, 128, 3, 3] },
  { name: 'block1.shortcut', shape: [128, 3, 1, 1] },
  { name: 'block2.conv1', shape: [128, 128, 3, 3] },
  { name: 'block2.conv2', shape: [128, 128, 3, 3] },
  { name: 'block2.shortcut', shape: [128, 128, 1, 1] },
  { name: 'block3.conv1', shape: [128, 128, 3, 3] },
  { name: 'block3.conv2', shape: [128, 128, 3, 3] },
  { name: 'block4.conv1', shape: [128, 128, 3, 3] },
  { name: 'block4.conv2', shape: [128, 128, 3, 3] },
  { name: 'linear', shape: [1, 128] },
];

function uniform(next: () => number, length: number, bound: number): Float32Array {
  return Float32Array.from({ length }, () => (2 * next() - 1) * bound);
}

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function snganDiscriminator(seed = 2018): Uint8Array {
  const next = mulberry32(seed);
  const tensors = SNGAN_D_LAYERS.flatMap(({ name, shape }) => {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    const weight = uniform(
      next,
      shape.reduce((a, b) => a * b, 1),
      bound,
    );
    const bias = uniform(next, shape[0], bound);
    return [
      { name: `${name}.weight`, dtype: 'F32', shape, data: bytesOf(weight) },
      { name: `${name}.bias`, dtype: 'F32', shape: [shape[0]], data: bytesOf(bias) },
    ];
  });
  return encodeSafetensorsFile(tensors, {
    format: 'pt',
    model: 'SNGAN ResNet discriminator, CIFAR-10, ch=128 (Miyato et al. 2018)',
    weights: 'seeded U(-1/sqrt(fan_in), 1/sqrt(fan_in)) draws, untrained; made by examples/make-example-models.ts',
  });
}

export interface TfjsExample {
  modelJson: string;
  shards: { name: string; data: Uint8Array }[];
}

/** A Keras-style DCGAN discriminator as tfjs-converter lays it out: kernels (kh, kw, in, out), biases after. */
export function dcganDiscriminatorTfjs(seed = 2015): TfjsExample {
  const next = mulberry32(seed);
  const layers = [
    { name: 'conv2d/kernel', shape: [4, 4, 3, 32] },
    { name: 'conv2d_1/kernel', shape: [4, 4, 32, 64], quantize: 'uint8' },
    { name: 'conv2d_2/kernel', shape: [4, 4, 64, 128], quantize: 'float16' },
    { name: 'dense/kernel', shape: [2048, 1] },
  ];
  const weights: Record<string, unknown>[] = [];
  const chunks: Uint8Array[] = [];
  for (const layer of layers) {
    const fanIn = layer.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    const kernel = uniform(
      next,
      layer.shape.reduce((a, b) => a * b, 1),
      bound,
    );
    const units = layer.shape[layer.shape.length - 1];
    const bias = uniform(next, units, bound);
    if (layer.quantize === 'uint8') {
      // tfjs-converter's affine uint8 quantization: q = round((w - min) / scale).
      const min = kernel.reduce((a, b) => Math.min(a, b));
      const max = kernel.reduce((a, b) => Math.max(a, b));
      const scale = (max - min) / 255;
      chunks.push(Uint8Array.from(kernel, (w) => Math.round((w - min) / scale)));
      weights.push({ name: layer.name, shape: layer.shape, dtype: 'float32', quantization: { dtype: 'uint8', scale, min } });
    } else if (layer.quantize === 'float16') {
      chunks.push(encodeFloat16(kernel));
      weights.push({ name: layer.name, shape: layer.shape, dtype: 'float32', quantization: { dtype: 'float16' } });
    } else {
      chunks.push(bytesOf(kernel));
      weights.push({ name: layer.name, shape: layer.shape, dtype: 'float32' });
    }
    chunks.push(bytesOf(bias));
    weights.push({ name: layer.name.replace('kernel', 'bias'), shape: [units], dtype: 'float32' });
  }
  const all = Buffer.concat(chunks);
  // Two shards, split mid-weight as tfjs-converter does with its fixed shard size.
  const split = 65536;
  const shards = [
    { name: 'group1-shard1of2.bin', data: all.subarray(0, split) },
    { name: 'group1-shard2of2.bin', data: all.subarray(split) },
  ];
  const model = {
    format: 'layers-model',
    generatedBy: 'spectral-norm examples/make-example-models.ts',
    convertedBy: null,
    modelTopology: { class_name: 'Sequential', config: { name: 'dcgan_discriminator' } },
    weightsManifest: [{ paths: shards.map((s) => s.name), weights }],
  };
  return { modelJson: JSON.stringify(model), shards };
}

export function writeExampleModels(directory = HERE): { safetensors: string; tfjs: string } {
  fs.mkdirSync(directory, { recursive: true });
  const safetensors = path.join(directory, 'sngan-d.safetensors');
  fs.writeFileSync(safetensors, snganDiscriminator());
  const tfjsDir = path.join(directory, 'dcgan-d-tfjs');
  fs.mkdirSync(tfjsDir, { recursive: true });
  const example = dcganDiscriminatorTfjs();
  for (const shard of example.shards) fs.writeFileSync(path.join(tfjsDir, shard.name), shard.data);
  const tfjs = path.join(tfjsDir, 'model.json');
  fs.writeFileSync(tfjs, example.modelJson);
  return { safetensors, tfjs };
}

if (require.main === module) {
  const written = writeExampleModels();
  console.log(`wrote ${path.relative(process.cwd(), written.safetensors)} and ${path.relative(process.cwd(), written.tfjs)}`);
}
