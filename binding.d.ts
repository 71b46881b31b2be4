// The contract every backend implements. The native addon (build/Release/spectral_norm.node) is cast to `Backend`
// when it is loaded, and lib/js-backend.ts implements the same interface in TypeScript, so the library and one
// test suite drive either through the same calls.

/** A weight, `out`, u or v: Float32Array for dtype 'float32', Float64Array for 'float64'. */
export type FloatArray = Float32Array | Float64Array;

/** Float memory on a CUDA device (the native addon's DeviceArray). */
export interface DeviceArray {
  readonly dtype: 'float32' | 'float64';
  readonly length: number;
  readonly device: number;
  readonly disposed: boolean;
  /** Copies `source` into elements [offset, offset + source.length). */
  upload(source: FloatArray, offset: number): void;
  /** Copies elements [offset, offset + target.length) into `target`. */
  download(target: FloatArray, offset: number): void;
  /** Frees the memory; idempotent, and the finalizer does the same. Every other method throws afterwards. */
  dispose(): void;
}

/** Elements [offset, offset + length) of a DeviceArray: a layer field of a job for a CUDA device. */
export interface DeviceSlice {
  array: DeviceArray;
  offset: number;
  length: number;
}

/**
 * One weight tensor read in place as PyTorch's `weight.permute(dim, *others).flatten(1)`: with
 * outer = prod(shape[:dim]), rows = shape[dim] and inner = prod(shape[dim+1:]), matrix element (r, o·inner + i)
 * is weight[(o·rows + r)·inner + i].
 */
export interface PowerLayer<A = FloatArray> {
  weight: A;
  /** Where W/σ goes: null for none (warm-up, estimate only); may be `weight` itself (in place). */
  out: A | null;
  /** rows elements; read, and replaced when the layer succeeds. */
  u: A;
  /** outer·inner elements; read, and replaced when the layer succeeds. */
  v: A;
  outer: number;
  rows: number;
  inner: number;
  /** A 1-D weight in PyTorch's parametrization: σ = ‖W‖, u and v unused. */
  vectorNorm: boolean;
  /**
   * When set, the layer's operator is the convolution x ↦ conv2d(x, W) instead of W's matrix ("real SN", Ryu et al.
   * 2019): each iteration is a convolution and its transpose. Then outer = 1, rows = u's length (cout·oh·ow),
   * inner = v's length (cin·h·w), and `weight` is the kernel; W/σ still divides the kernel. The cuda backend refuses
   * such a layer with a RangeError.
   */
  operator?: ConvOperator | null;
}

/**
 * A convolution read as a linear operator: PyTorch's torch.nn.Conv2d(inChannels, outChannels, (kernelHeight,
 * kernelWidth), stride, padding, padding_mode, bias=False) on an input [1, inChannels, inputHeight, inputWidth].
 * lib/conv/geometry.ts checks and builds it; outputHeight and outputWidth follow from the rest.
 */
export interface ConvOperator {
  kind: 'conv2d';
  outChannels: number;
  inChannels: number;
  kernelHeight: number;
  kernelWidth: number;
  inputHeight: number;
  inputWidth: number;
  outputHeight: number;
  outputWidth: number;
  strideHeight: number;
  strideWidth: number;
  paddingHeight: number;
  paddingWidth: number;
  /** PyTorch's padding_mode='circular'; false is 'zeros'. */
  circular: boolean;
  /** The kernel's layout: 'oihw' is PyTorch's [cout, cin, kh, kw], 'hwio' TF/Keras's [kh, kw, cin, cout]. */
  layout: 'oihw' | 'hwio';
}

/** One application of a convolution, or of its transpose (conv_transpose2d, the adjoint), to one image. */
export interface ConvApplyJob {
  /** The kernel, in operator.layout. */
  weight: FloatArray;
  operator: ConvOperator;
  /** false: output (cout·oh·ow) = conv2d(input (cin·h·w)); true: output (cin·h·w) = its transpose of input. */
  transpose: boolean;
  input: Float64Array;
  output: Float64Array;
  threads: number;
}

/**
 * The FFT method (Sedghi et al. 2019) on the block-circulant that bounds a convolution (lib/conv/geometry.ts,
 * circulantPlan): the input is split into phasesHeight × phasesWidth polyphase components, kernel row a reads
 * component rowTaps[2a] at offset rowTaps[2a + 1] (columns likewise), and the result is a stride-1 circular
 * correlation on a gridHeight × gridWidth grid.
 */
export interface ConvSpectrumJob {
  /** The kernel as float64, in operator.layout. */
  weight: Float64Array;
  operator: ConvOperator;
  gridHeight: number;
  gridWidth: number;
  phasesHeight: number;
  phasesWidth: number;
  /** kernelHeight (phase, offset) pairs. */
  rowTaps: Int32Array;
  /** kernelWidth (phase, offset) pairs. */
  colTaps: Int32Array;
  threads: number;
  /** Written: an input-shaped vector (cin·h·w), the circulant's top right singular vector as the input sees it. */
  vector: Float64Array;
}

export interface ConvSpectrumResult {
  /** Certified: the circulant's largest singular value is at most this, rounding accounted for. */
  upper: number;
  /** The circulant's largest singular value, estimated (resolved to a relative 2^-33). */
  estimate: number;
  /** Blocks examined (half the grid: a real kernel's spectrum is symmetric). */
  frequencies: number;
  /** Blocks whose top singular value had to be resolved rather than certified below the threshold. */
  refined: number;
}

/** Per-layer outcome, written into PowerJob.status; lib/codes.ts defines the values and what each means. */
export type { LayerStatus } from './lib/codes';

/**
 * A job over layers whose arrays are A: typed arrays, or, in a job for a CUDA device (DevicePowerJob), device
 * slices.
 */
export interface PowerJob<A = FloatArray> {
  /** The element type of every array of every layer. */
  dtype: 'float32' | 'float64';
  layers: PowerLayer<A>[];
  /**
   * Fixed mode (tolerance < 0): exactly this many power iterations with PyTorch's normalize(x) = x / max(‖x‖, eps);
   * 0 is eval mode, σ = u·(W v) with u and v as they are. Converge mode (tolerance ≥ 0): at most this many.
   */
  iterations: number;
  /** < 0: fixed mode. ≥ 0: stop once σ changes by at most tolerance·σ; exact normalisation (scale-invariant). */
  tolerance: number;
  eps: number;
  /**
   * How float32 products are summed: 'mixed', float32 partial sums of at most 16 products per lane combined in
   * float64; 'float64', every product accumulated in float64. Float64 weights always use float64; so does the js
   * backend.
   */
  precision: 'mixed' | 'float64';
  /** torch.nn.utils.spectral_norm's order: v ← normalize(Wᵀu) first, then u ← normalize(W v). */
  legacy: boolean;
  /** Threads the CPU backend may use. */
  threads: number;
  /** The native addon runs the job on this CUDA device when set; else on the CPU. */
  device?: number;
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

/** A CUDA device, as backendInfo().cuda.devices lists it. */
export interface CudaDevice {
  /** The device's ordinal: the value of the `device` option that selects it. */
  index: number;
  /** The device's name, as the CUDA runtime reports it. */
  name: string;
  /** Compute capability as 'major.minor', e.g. '9.0'. */
  computeCapability: string;
  /** The device's global memory, in bytes. */
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
   * ErrorCode.OutOfMemory (lib/codes.ts) when scratch memory cannot be had (nothing modified then either).
   */
  run(job: PowerJob): boolean;
  /** The same off the event loop (the native backend pins the job's arrays until it settles). */
  runAsync(job: PowerJob): Promise<boolean>;
  /** A convolution or its transpose, summed in float64 whatever the weight's dtype (certified bounds rely on it). */
  convApply(job: ConvApplyJob): void;
  /** The certified largest singular value of a convolution's block-circulant (lib/conv/spectrum.ts). */
  convSpectrum(job: ConvSpectrumJob): ConvSpectrumResult;
}

/** A layer of a job for a CUDA device: typed arrays (copied in and out) or device slices, all four fields alike. */
export interface DevicePowerLayer extends Omit<PowerLayer, 'weight' | 'out' | 'u' | 'v'> {
  weight: FloatArray | DeviceSlice;
  out: FloatArray | DeviceSlice | null;
  u: FloatArray | DeviceSlice;
  v: FloatArray | DeviceSlice;
}

export interface DevicePowerJob extends Omit<PowerJob, 'layers' | 'device'> {
  layers: DevicePowerLayer[];
  device: number;
}

/**
 * A PowerJob on host arrays, packed for the CPU backend (lib/backends.ts packJob): its numbers in one Float64Array and
 * its arrays in one list, which the addon reads in a fraction of the Node-API calls a PowerJob's two dozen
 * properties take (more than a small layer's math). header: dtype (0 float32, 1 float64), iterations, tolerance,
 * eps, legacy (0 or 1), threads, precision (0 'mixed', 1 'float64'), the layer count n, then outer, rows, inner and
 * vectorNorm (0 or 1) of each layer (any numbers after those are ignored). arrays: sigma, status, iterationsRun,
 * converged, then weight, out (or null), u and v of each layer. A layer with an `operator` has no place in it: the cpu
 * backend sends jobs with convolution operators unpacked.
 */
export interface PackedPowerJob {
  header: Float64Array;
  arrays: (FloatArray | Int32Array | Uint8Array | null)[];
}

/** The native addon: a Backend that can also run jobs on CUDA devices, plus its `internal` object. */
export interface NativeAddon extends Backend {
  /** A job with `device` set runs on that CUDA device (the cuda backend); its layers may use device slices. */
  run(job: PowerJob | DevicePowerJob): boolean;
  runAsync(job: PowerJob | DevicePowerJob): Promise<boolean>;
  /** run and runAsync for a host job on the CPU, packed; the same checks, results and errors. */
  runPacked(job: PackedPowerJob): boolean;
  runPackedAsync(job: PackedPowerJob): Promise<boolean>;
  /** Allocates `length` elements on a CUDA device; throws an Error (code ERR_SPECTRAL_NORM_CUDA or _OUT_OF_MEMORY). */
  DeviceArray: new (dtype: 'float32' | 'float64', length: number, device: number) => DeviceArray;
  /**
   * Measures what the 'auto' cost model needs of a CUDA device, in ≤ 30 ms: pinned host↔device bandwidths, the
   * latency of one launch, and the device's copy bandwidth (read + write). Throws an Error (code
   * ERR_SPECTRAL_NORM_CUDA) when the device cannot run.
   */
  cudaProbe(device: number): CudaProbe;
  /**
   * Widens half-precision little-endian bytes (any byte offset) into `dst` from element `at` on, exactly, with the
   * running CPU's conversion (vcvtph2ps on AVX-512 or F16C, else scalar; `SN_SIMD` caps it like the kernels). NaNs
   * keep sign and payload and come out quiet. cli/formats/half.ts uses it, with its own table as the fallback.
   */
  decodeHalf(storage: 'float16' | 'bfloat16', src: Uint8Array, dst: Float32Array, at: number): void;
  /** Test hooks and benchmark probes. Never part of the public API: lib/index.ts does not expose them. */
  internal: NativeInternals;
}

export interface CudaProbe {
  hostToDeviceBytesPerSecond: number;
  deviceToHostBytesPerSecond: number;
  launchSeconds: number;
  deviceCopyBytesPerSecond: number;
}

/** The addon's test hooks (native/binding/testing.cc) and benchmark probes (native/binding/bench.cc). */
export interface NativeInternals {
  /** Benchmarks: the streaming read bandwidth (bytes/s, median of `repeats`) over a `bytes` buffer on `threads` threads. */
  readBandwidth(bytes: number, threads: number, repeats: number): number;
  /** Benchmarks: device-to-device copy bandwidth in bytes/s (read + write), median of `repeats`, CUDA events. */
  cudaCopyBandwidth(device: number, bytes: number, repeats: number): number;
  /** Benchmarks: the device's streaming read bandwidth in bytes/s, median of `repeats`, CUDA events. */
  cudaReadBandwidth(device: number, bytes: number, repeats: number): number;
  /** Benchmarks: milliseconds between CUDA events on the device's stream recorded around fn(). */
  cudaTime(device: number, fn: () => void): number;
  /** Tests only: the nth native scratch allocation from now (1 = the next) throws out-of-memory, once; 0 disarms. */
  testFailScratchAllocation(n: number): void;
  /** Tests only: native scratch allocations made so far by this process. */
  testScratchAllocationCount(): number;
  /**
   * Tests only: the CUDA backend's work lists for a batch (native/cuda/batch_plan.h), computed without a GPU, for a
   * device with `caps` (default: 132 multiprocessors, clusters of up to 8 blocks, 256 threads per block).
   */
  planCudaBatch(
    layers: { outer: number; rows: number; inner: number; vectorNorm: boolean; hasOut: boolean; vectorLoads?: boolean }[],
    elementBytes: number,
    iterated: boolean,
    caps?: { multiprocessors?: number; maxCluster?: number; blockThreads?: number },
  ): CudaBatchPlan;
  /** Tests only: what the CUDA backend holds now; all zero once the last environment that used CUDA has ended. */
  cudaResources(): CudaResources;
  /** Tests only: the pinned staging chunk (bytes) of the next staging allocation; 0 restores the default (8 MiB). */
  testCudaStagingChunk(bytes: number): void;
  /** Tests only: native/common/codes.h, keyed by the names lib/codes.ts uses, so a test can check the two agree. */
  codes: {
    layerStatus: Record<string, number>;
    commitKind: Record<string, number>;
    errorCode: Record<string, string>;
  };
}

export interface CudaResources {
  users: number;
  contexts: number;
  arenaBytes: number;
  pinnedBytes: number;
  graphs: number;
  deviceArrayBytes: number;
}

export interface CudaBatchPlan {
  layers: {
    /** 'tiled': a cluster of `tiles` blocks per slot keeps its columns in registers; 'general': any shape. */
    kind: 'tiled' | 'general';
    slots: number;
    tiles: number;
    tileColumns: number;
    units: number;
    groups: number;
    chunks: number;
    xOffset: number;
    dOffset: number;
    tOffset: number;
    partialOffset: number;
    slotStatsOffset: number;
    chunkStatsOffset: number;
  }[];
  sweep: { layer: number; slot: number; tile: number; begin: number; end: number }[];
  launches: { kind: 'tiled' | 'general'; cluster: number; units: number; vectorLoads: boolean; begin: number; count: number }[];
  reduce: { layer: number; group: number; begin: number; end: number }[];
  finish: { layer: number; chunk: number; begin: number; end: number }[];
  /** kind: CommitKind (lib/codes.ts): Vectors (the first vectorItems), then Divide the elements [begin, end). */
  commit: { layer: number; kind: number; begin: number; end: number }[];
  vectorItems: number;
  divideBlocks: number;
  doubles: number;
}
