// The contract every backend implements. The native addon (build/Release/spectral_norm.node) is cast to `Backend`
// when it is loaded, and lib/js-backend.ts implements the same interface in TypeScript, so the library and one
// test suite drive either through the same calls.

export type FloatArray = Float32Array | Float64Array;

/**
 * One weight tensor read in place as PyTorch's `weight.permute(dim, *others).flatten(1)`: with
 * outer = prod(shape[:dim]), rows = shape[dim] and inner = prod(shape[dim+1:]), matrix element (r, o·inner + i)
 * is weight[(o·rows + r)·inner + i].
 */
export interface PowerLayer {
  weight: FloatArray;
  /** Where W/σ goes: null for none (warm-up, estimate only); may be `weight` itself (in place). */
  out: FloatArray | null;
  /** rows elements; read, and replaced when the layer succeeds. */
  u: FloatArray;
  /** outer·inner elements; read, and replaced when the layer succeeds. */
  v: FloatArray;
  outer: number;
  rows: number;
  inner: number;
  /** A 1-D weight in PyTorch's parametrization: σ = ‖W‖, u and v unused. */
  vectorNorm: boolean;
}

/**
 * Per-layer outcome, written into PowerJob.status:
 * 0: u and v replaced, out = W/σ;
 * 1: |σ| ≤ eps, so u and v kept and out = W unchanged;
 * 2: NaN or ±Inf in W, or an overflow; the backend then modified nothing in the whole job.
 */
export type LayerStatus = 0 | 1 | 2;

export interface PowerJob {
  /** The element type of every array of every layer. */
  dtype: 'float32' | 'float64';
  layers: PowerLayer[];
  /**
   * Fixed mode (tolerance < 0): exactly this many power iterations with PyTorch's normalize(x) = x / max(‖x‖, eps);
   * 0 is eval mode, σ = u·(W v) with u and v as they are. Converge mode (tolerance ≥ 0): at most this many.
   */
  iterations: number;
  /** < 0: fixed mode. ≥ 0: stop once σ changes by at most tolerance·σ; exact normalisation (scale-invariant). */
  tolerance: number;
  eps: number;
  /** torch.nn.utils.spectral_norm's order: v ← normalize(Wᵀu) first, then u ← normalize(W v). */
  legacy: boolean;
  /** Threads the CPU backend may use. */
  threads: number;
  /** Results, one entry per layer: σ rounded to dtype, LayerStatus, iterations run, and 1 when converged. */
  sigma: Float64Array;
  status: Int32Array;
  iterationsRun: Int32Array;
  converged: Uint8Array;
}

export interface CpuInfo {
  compiled: boolean;
  /** The kernel variant the running CPU selected: 'avx512', 'avx2', 'sse2', 'scalar', or 'js'. */
  simd: string;
  hardwareThreads: number;
}

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
}

export interface CudaInfo {
  compiled: boolean;
  runtimeVersion: number;
  driverVersion: number;
  devices: CudaDevice[];
  /** Why no device is usable, when none is. */
  reason: string;
}

export interface NativeInfo {
  cpu: CpuInfo;
  cuda: CudaInfo;
}

export interface Backend {
  backendInfo(): NativeInfo;
  /**
   * Runs the job and writes its results. Returns false when some layer was non-finite, in which case no weight, out,
   * u or v was modified. Throws TypeError or RangeError for a malformed job, and an Error with code
   * 'ERR_SPECTRAL_NORM_OUT_OF_MEMORY' when scratch memory cannot be had (nothing modified then either).
   */
  run(job: PowerJob): boolean;
  /** The same off the event loop (the native backend pins the job's arrays until it settles). */
  runAsync(job: PowerJob): Promise<boolean>;
}

/** The native addon: a Backend, plus what the benchmarks measure the machine with. */
export interface NativeAddon extends Backend {
  /** The streaming read bandwidth (bytes/s, median of `repeats`) over a `bytes` buffer on `threads` threads. */
  readBandwidth(bytes: number, threads: number, repeats: number): number;
  /** Test-only: the nth native scratch allocation from now (1 = the next) throws out-of-memory, once; 0 disarms. */
  testFailScratchAllocation(n: number): void;
  /** Test-only: native scratch allocations made so far by this process. */
  testScratchAllocationCount(): number;
}
