// spectral-norm: spectral normalization of neural-network weights (Miyato et al. 2018), W ← W / σ_max(W), with
// PyTorch's exact semantics, batched, on native CPU (SIMD, threads) or pure-JS backends.
export type { FloatArray, CudaDevice } from '../binding';
export { ErrorCode, WarningCode } from './codes';
export { backendInfo, type BackendInfo, type BackendName, type BackendChoice } from './backends';
export { autoBackend, type AutoBackendOptions } from './auto-backend';
export type { CostModelInfo, CostSource } from './cost-calibration';
export type { CostConstants, HostCostConstants, CudaCostConstants } from './cost-model';
export { SpectralNormalizer, type SpectralNormalizerOptions, type SpectralNormalizerState, type StepOptions } from './normalizer';
export {
  SpectralNormBatch,
  type LayerSpec,
  type SpectralNormBatchOptions,
  type BatchStepOptions,
  type SpectralNormBatchState,
} from './batch';
export {
  spectralNorm,
  spectralNormAsync,
  spectralNormalize,
  spectralNormalizeAsync,
  type SpectralNormOptions,
  type SpectralNormalizeOptions,
  type SpectralNormResult,
} from './oneshot';
export {
  SpectralNormCoalescer,
  type SpectralNormCoalescerOptions,
  type SpectralNormCoalescerStats,
  type CoalescedNormOptions,
  type CoalescedNormalizeOptions,
} from './coalescer';
export { exactSpectralNorm, type ExactSpectralNormOptions } from './exact';
export { convSpectralNorm, type ConvSpectralNormOptions, type ConvSpectralNormResult } from './conv/operator-norm';
export type { ConvOptions, ConvOperatorOptions, KernelLayout, PaddingMode } from './conv/geometry';
export { DeviceWeights } from './device';
export type { CommonOptions } from './options';
export type { DType, Precision } from './validate';
