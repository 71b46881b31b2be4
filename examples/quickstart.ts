// `npm start`: σ of a few layers on every backend this machine has, then one SpectralNormalizer step.
import { SpectralNormalizer, backendInfo, exactSpectralNorm, spectralNorm } from '../lib';

function randomWeight(length: number, seed: number): Float32Array {
  // A small deterministic generator, so every run prints the same numbers.
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  return Float32Array.from({ length }, next);
}

const layers = [
  { name: 'linear 256×512', shape: [256, 512], dim: 0 },
  { name: 'conv 64×32×3×3', shape: [64, 32, 3, 3], dim: 0 },
  { name: 'conv-transpose 32×64×4×4, dim 1', shape: [32, 64, 4, 4], dim: 1 },
];

const info = backendInfo();
console.log(
  `spectral-norm backends: ${info.available.join(', ')} (auto: ${info.auto}; CPU SIMD: ${info.cpu.simd ?? 'none'}, threads: ${info.cpu.threads})`,
);
if (!info.cuda.available) console.log(`CUDA: unavailable (${info.cuda.reason})`);

layers.forEach((layer, i) => {
  const weight = randomWeight(
    layer.shape.reduce((a, b) => a * b, 1),
    i + 1,
  );
  const exact = exactSpectralNorm(weight, layer.shape, { dim: layer.dim });
  const parts = info.available.map((backend) => {
    const r = spectralNorm(weight, layer.shape, { dim: layer.dim, backend, tolerance: 1e-7 });
    return `${backend} ${r.sigma.toFixed(6)} (${r.iterations} it)`;
  });
  console.log(`${layer.name.padEnd(34)} σ: ${parts.join(', ')}; exact ${exact.toFixed(6)}`);
});

const weight = randomWeight(256 * 512, 1);
const sn = new SpectralNormalizer([256, 512], { seed: 0 });
sn.warmup(weight, 15);
const sigma = sn.step(weight);
console.log(
  `SpectralNormalizer (${sn.backend}): one training step gave σ = ${sigma.toFixed(6)}; the weight now has σ ≈ ${exactSpectralNorm(weight, [256, 512]).toFixed(6)}`,
);
