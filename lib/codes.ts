// The one vocabulary every backend and the API share: a layer's outcome in a job, the `code` of the errors that are
// not argument errors, and (internal) the CUDA commit items' kinds. native/common/codes.h defines the same values for
// C++; test/core/codes.test.ts checks that the two agree.

/** Per-layer outcome a backend writes into PowerJob.status. */
export const LayerStatus = {
  /** u and v replaced, out = W/σ. */
  Normalized: 0,
  /** |σ| ≤ eps: u and v kept, out = W unchanged. */
  BelowEps: 1,
  /** NaN or ±Inf in W, or an overflow: the backend modified nothing in the whole job. */
  NonFinite: 2,
} as const;
export type LayerStatus = (typeof LayerStatus)[keyof typeof LayerStatus];

/** The `code` property of errors that are not about an argument. */
export const ErrorCode = {
  /** Scratch, device or staging memory could not be had; nothing was modified. */
  OutOfMemory: 'ERR_SPECTRAL_NORM_OUT_OF_MEMORY',
  /** The CUDA runtime or device failed; the message names the call, file, line and CUDA error. */
  Cuda: 'ERR_SPECTRAL_NORM_CUDA',
  /** SpectralNormCoalescer: maxQueue requests are already waiting. */
  QueueFull: 'ERR_SPECTRAL_NORM_QUEUE_FULL',
  /** SpectralNormCoalescer: close() was called. */
  Closed: 'ERR_SPECTRAL_NORM_CLOSED',
} as const;
/** One of ErrorCode's values: the `code` of an error that is not about an argument. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The `code` of the process warnings the library emits (process.on('warning', ...)). */
export const WarningCode = {
  /** The native addon is missing or did not load, so calls run on the pure-JS backend; emitted once per process. */
  JsFallback: 'SPECTRAL_NORM_JS_FALLBACK',
} as const;
/** One of WarningCode's values: the `code` of a process warning from this library. */
export type WarningCode = (typeof WarningCode)[keyof typeof WarningCode];

/**
 * Internal: what one block of the CUDA commit kernel does (the `kind` of binding.d.ts's CudaBatchPlan commit items,
 * native/cuda/batch_plan.h). Not part of the public API.
 */
export const CommitKind = {
  /** out = W/σ over a range of a layer's elements. */
  Divide: 0,
  /** Write a layer's new u and v. */
  Vectors: 1,
} as const;
export type CommitKind = (typeof CommitKind)[keyof typeof CommitKind];
