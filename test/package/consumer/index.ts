// Type-checked by test/package/run.sh as a consumer would: `tsc --strict` with TypeScript's defaults (CommonJS, the
// default target and lib), without @types/node and without skipLibCheck. It is never run.
import {
  type BackendInfo,
  type DeviceWeights,
  type SpectralNormResult,
  ErrorCode,
  SpectralNormBatch,
  SpectralNormCoalescer,
  SpectralNormalizer,
  WarningCode,
  backendInfo,
  exactSpectralNorm,
  spectralNorm,
  spectralNormalizeAsync,
} from 'spectral-norm';

const weight = new Float32Array(64 * 32 * 3 * 3);
const sn = new SpectralNormalizer([64, 32, 3, 3], { iterations: 1, seed: 0, backend: 'auto' });
const sigma: number = sn.step(weight);
const state = sn.state();
const restored: SpectralNormalizer = SpectralNormalizer.fromState(state);

const batch = new SpectralNormBatch([{ shape: [64, 32, 3, 3] }, { shape: [10, 256], dim: 0 }], { dtype: 'float32' });
const sigmas: Float64Array = batch.step([weight, new Float32Array(2560)]);
let handle: DeviceWeights | null = null;
if (backendInfo().cuda.available) handle = batch.toDevice([weight, new Float32Array(2560)]);
if (handle) handle.dispose();

const result: SpectralNormResult = spectralNorm(weight, [64, 288], { tolerance: 1e-6 });
const exact: number = exactSpectralNorm(weight, [64, 288]);
const info: BackendInfo = backendInfo();
const codes: string[] = [ErrorCode.OutOfMemory, WarningCode.JsFallback];

const coalescer = new SpectralNormCoalescer({ maxBatchSize: 16 });
const pending: Promise<SpectralNormResult> = coalescer.norm(weight, [64, 288]);
const normalized: Promise<SpectralNormResult> = spectralNormalizeAsync(weight, [64, 288], { precision: 'float64' });

export { codes, exact, info, normalized, pending, restored, result, sigma, sigmas };
