// Run by server/coalescer.test.ts in a child process with SN_EMULATION_DEVICES=2 (the emulation counts its devices
// once per process): requests naming device 0 and device 1, interleaved, through one coalescer per backend option.
// Prints each coalescer's stats and every request's σ and the σ of the same call made on its own, as JSON.
import { type BackendChoice, SpectralNormCoalescer, spectralNorm } from '../../lib';

async function main() {
  const shape = [24, 40];
  const weights = Array.from({ length: 8 }, (_, i) => Float32Array.from({ length: 24 * 40 }, (_, j) => Math.sin(7 * i + j)));
  const out: Record<string, unknown> = {};
  for (const backend of ['cuda', 'auto'] as BackendChoice[]) {
    const coalescer = new SpectralNormCoalescer({ backend, maxBatchSize: 64, maxDelayMs: 60_000 });
    const pending = weights.map((w, i) => coalescer.norm(w, shape, { device: i % 2, seed: i }));
    coalescer.flush();
    const results = await Promise.all(pending);
    out[backend] = {
      stats: coalescer.stats(),
      sigma: results.map((r) => r.sigma),
      alone: weights.map((w, i) => spectralNorm(w, shape, { backend, device: i % 2, seed: i }).sigma),
    };
    await coalescer.close();
  }
  console.log(JSON.stringify(out));
}

void main();
