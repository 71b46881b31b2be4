// spectral-norm itself: each backend as a SpectralNormBatch (one call for all layers), and, for multi-layer
// workloads, the same step done as one SpectralNormalizer per layer, the way a loop over layers would.
import { type BackendChoice, SpectralNormBatch, SpectralNormalizer, backendInfo } from '../../lib';
import type { Contender, Runner } from './contender';

function batchContender(name: string, backend: BackendChoice, threads?: number): Contender {
  return {
    name,
    family: 'library',
    threads: threads === 1 || backend === 'js' ? 1 : 'all',
    async unavailable() {
      const info = backendInfo();
      if (backend === 'cpu' && !info.cpu.available) return info.cpu.reason;
      return null;
    },
    async prepare(workload, weights): Promise<Runner> {
      const batch = new SpectralNormBatch(
        workload.shapes.map((shape) => ({ shape })),
        { backend, threads, iterations: workload.iterations, seed: 1 },
      );
      const out = weights.map((w) => new Float32Array(w.length));
      return { run: () => void batch.step(weights, { out }) };
    },
  };
}

function perLayerContender(): Contender {
  return {
    name: 'spectral-norm cpu, a normalizer per layer',
    family: 'library',
    threads: 'all',
    async unavailable() {
      const info = backendInfo();
      return info.cpu.available ? null : info.cpu.reason;
    },
    async prepare(workload, weights) {
      if (workload.shapes.length === 1) return 'a single layer: the same as the batch';
      const normalizers = workload.shapes.map(
        (shape, i) => new SpectralNormalizer(shape, { backend: 'cpu', iterations: workload.iterations, seed: 1 + i }),
      );
      const out = weights.map((w) => new Float32Array(w.length));
      return {
        run: () => {
          for (let i = 0; i < normalizers.length; i++) normalizers[i].step(weights[i], { out: out[i] });
        },
      };
    },
  };
}

export function libraryContenders(): Contender[] {
  return [
    batchContender('spectral-norm cpu', 'cpu'),
    batchContender('spectral-norm cpu, 1 thread', 'cpu', 1),
    perLayerContender(),
    batchContender('spectral-norm auto', 'auto'),
    batchContender('spectral-norm js', 'js'),
  ];
}
