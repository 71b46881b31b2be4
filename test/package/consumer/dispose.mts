// Type-checked by test/package/run.sh with lib esnext on TypeScript ≥ 5.2: `using` frees device weights.
import { SpectralNormBatch } from 'spectral-norm';

export function stepOnDevice(weights: Float32Array[]): Float64Array {
  const batch = new SpectralNormBatch(weights.map((w) => ({ shape: [w.length / 4, 4] })));
  using handle = batch.toDevice(weights);
  return batch.step(handle);
}
