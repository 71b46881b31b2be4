// Which backends this process can use, and which one a call gets. lib/native-loader.ts loads the addon and keeps
// every error, so a backend that cannot load can say why.
import { availableParallelism } from 'node:os';

import type { Backend, CudaDevice, CudaInfo, NativeAddon, PackedPowerJob, PowerJob } from '../binding';
import { type CalibrationTarget, type CostModelInfo, costModelInfo, jobConstants } from './cost-calibration';
import { type CostConstants, type CostedJob, type Predictions, cheapestBackend, predict } from './cost-model';
import { jsBackend } from './js-backend';
import { type NativeLoad, loadNative, nativeMissingReason, warnJsFallback } from './native-loader';
import { describe } from './validate';

/** A backend that runs jobs: the native CPU backend (SIMD, threads), CUDA, or pure JS. */
export type BackendName = 'cpu' | 'cuda' | 'js';
/** The `backend` option: a backend, or 'auto' (the default), which picks one per job by the cost model. */
export type BackendChoice = BackendName | 'auto';

/** What backendInfo() reports, asked afresh on each call. */
export interface BackendInfo {
  /** The backends a call may request in this process. */
  available: BackendName[];
  /**
   * What `backend: 'auto'` (the default) picks for a training step of one 1024×1024 float32 layer on host arrays.
   * It picks per job: `autoBackend(layers, options)` says what it picks for yours.
   */
  auto: BackendName;
  /** The constants of the cost model 'auto' decides with, and where they came from. */
  costModel: CostModelInfo;
  /** The native CPU backend: whether the addon loaded, its SIMD variant and default threads, or why it did not. */
  cpu: {
    /** Whether backend 'cpu' can run in this process. */
    available: boolean;
    /** The native addon (and with it the CPU backend) was built and loaded. */
    compiled: boolean;
    /** The kernel variant the running CPU selected ('avx512', 'avx2', 'sse2'), or null without the addon. */
    simd: string | null;
    /** Threads a call uses by default (the `threads` option overrides it). */
    threads: number;
    /** Where the addon was loaded from, or why it could not be. */
    path: string | null;
    /** Why the CPU backend is unavailable (without the addon: every path tried, and the fix), or null. */
    reason: string | null;
  };
  /** The CUDA backend: whether it was compiled in and can run, its devices and versions, or why it cannot. */
  cuda: {
    /** Whether backend 'cuda' can run: the addon has CUDA, a device was found, and no device error has stuck. */
    available: boolean;
    /** The addon was built with the CUDA toolkit. */
    compiled: boolean;
    /** The devices found; the `device` option is an index into them. */
    devices: CudaDevice[];
    /** The CUDA runtime's and the driver's versions as CUDA encodes them (1000·major + 10·minor); 0 when unknown. */
    runtimeVersion: number;
    driverVersion: number;
    /** Why backend 'cuda' cannot run, or null when it can. */
    reason: string | null;
  };
  /** The pure-JS backend, always available. */
  js: { available: true };
}

/** The CUDA part of the addon's report, asked afresh: a sticky device error since load makes the backend unusable. */
function cudaInfo(native: NativeLoad): CudaInfo | null {
  return native.binding ? native.binding.backendInfo().cuda : null;
}

/** Why the cuda backend cannot run, or null when it can. */
function cudaReason(native: NativeLoad, cuda: CudaInfo | null): string | null {
  if (!cuda) return nativeMissingReason(native);
  if (!cuda.compiled || cuda.devices.length === 0 || cuda.reason) return cuda.reason || 'no CUDA device was found';
  return null;
}

/**
 * The cuda backend: the addon's own run and runAsync, with the job sent to one device. Convolution operators are not
 * on CUDA yet: the addon refuses operator layers in a device job, and convApply and convSpectrum (used for certified
 * bounds) run on the CPU.
 */
function cudaBackend(binding: NativeAddon, device: number): Backend {
  return {
    backendInfo: () => binding.backendInfo(),
    run: (job) => binding.run({ ...job, device }),
    runAsync: (job) => binding.runAsync({ ...job, device }),
    convApply: (job) => binding.convApply(job),
    convSpectrum: (job) => binding.convSpectrum(job),
  };
}

/**
 * A host job as the addon's packed entry points take it (binding.d.ts PackedPowerJob): reading a PowerJob's two dozen
 * properties through Node-API cost more than the math of a small layer, and grew with every layer of a batch. The
 * header and the list are this module's own, reused from call to call: the addon reads them before it returns (an
 * async call too), and JS cannot call in again meanwhile. `release` empties the list afterwards, so that it keeps no
 * caller's array alive.
 */
let packedHeader = new Float64Array(64);
const packedArrays: PackedPowerJob['arrays'] = [];

export function packJob(job: PowerJob): PackedPowerJob {
  const n = job.layers.length;
  if (packedHeader.length < 8 + 4 * n) packedHeader = new Float64Array(2 * (8 + 4 * n));
  const header = packedHeader;
  header[0] = job.dtype === 'float64' ? 1 : 0;
  header[1] = job.iterations;
  header[2] = job.tolerance;
  header[3] = job.eps;
  header[4] = job.legacy ? 1 : 0;
  header[5] = job.threads;
  header[6] = job.precision === 'float64' ? 1 : 0;
  header[7] = n;
  const arrays = packedArrays;
  arrays.length = 4 + 4 * n;
  arrays[0] = job.sigma;
  arrays[1] = job.status;
  arrays[2] = job.iterationsRun;
  arrays[3] = job.converged;
  for (let i = 0; i < n; i++) {
    const layer = job.layers[i];
    const h = 8 + 4 * i;
    header[h] = layer.outer;
    header[h + 1] = layer.rows;
    header[h + 2] = layer.inner;
    header[h + 3] = layer.vectorNorm ? 1 : 0;
    const a = 4 + 4 * i;
    arrays[a] = layer.weight;
    arrays[a + 1] = layer.out;
    arrays[a + 2] = layer.u;
    arrays[a + 3] = layer.v;
  }
  return { header, arrays };
}

/** Runs a call on the packed job and then empties the shared list, whatever the call did. */
function withPacked<R>(job: PowerJob, call: (packed: PackedPowerJob) => R): R {
  try {
    return call(packJob(job));
  } finally {
    packedArrays.length = 0;
  }
}

/** Whether a job has convolution operator layers: the packed header has no room for their geometry. */
function hasOperators(job: PowerJob): boolean {
  return job.layers.some((layer) => layer.operator);
}

/** The cpu backend: the addon's packed entry points, and its unpacked ones for jobs with convolution operators. */
function cpuBackend(binding: NativeAddon): Backend {
  return {
    backendInfo: () => binding.backendInfo(),
    run: (job) => (hasOperators(job) ? binding.run(job) : withPacked(job, (packed) => binding.runPacked(packed))),
    runAsync: (job) => (hasOperators(job) ? binding.runAsync(job) : withPacked(job, (packed) => binding.runPackedAsync(packed))),
    convApply: (job) => binding.convApply(job),
    convSpectrum: (job) => binding.convSpectrum(job),
  };
}

const cpuBackends = new WeakMap<NativeAddon, Backend>();

/** The cpu backend over the loaded addon, made once. */
function cpuOf(binding: NativeAddon): Backend {
  let cpu = cpuBackends.get(binding);
  if (!cpu) cpuBackends.set(binding, (cpu = cpuBackend(binding)));
  return cpu;
}

/** The loaded native addon, for benchmarks; null when it did not load. Not part of the public API. */
export function nativeAddon(): NativeAddon | null {
  return loadNative().binding;
}

export function defaultThreads(): number {
  const native = loadNative();
  return native.info ? native.info.cpu.hardwareThreads : availableParallelism();
}

/** The cuda backend: jobs go to one device, and it can hold weights in device memory (lib/device.ts). */
export interface CudaBackend {
  name: 'cuda';
  impl: Backend;
  /** The CUDA device every job goes to. */
  device: number;
  /** The addon itself: it allocates device memory and runs jobs on device slices. */
  native: NativeAddon;
}

/** The cpu or js backend for host arrays. */
export interface HostBackend {
  name: 'cpu' | 'js';
  impl: Backend;
  /**
   * Where jobs on DeviceWeights go: under 'auto', the cuda backend when a device is usable (host arrays went where
   * they are predicted to finish first); null under a pinned 'cpu' or 'js'.
   */
  cuda: CudaBackend | null;
}

export type ResolvedBackend = HostBackend | CudaBackend;

/** The backend jobs on device memory run on, or null when there is none. */
export function deviceBackend(backend: ResolvedBackend): CudaBackend | null {
  return backend.name === 'cuda' ? backend : backend.cuda;
}

/** A checked backend option; 'auto' is resolved once the job is known. */
export interface BackendOption {
  choice: BackendChoice;
  /** The usable cuda backend of the device asked for (or device 0); null when cuda is unusable or not asked for. */
  cuda: CudaBackend | null;
  /** Why no CUDA device is usable, or null when one is. */
  cudaReason: string | null;
}

/**
 * Checks a backend option and its device without resolving 'auto'. Throws a RangeError naming the option when it is
 * unknown or unavailable. `device` (named `deviceName` in errors) picks the GPU of the cuda backend, and only
 * applies to it.
 */
export function checkBackendOption(name: string, value: unknown, deviceName?: string, device?: unknown): BackendOption {
  const choice = value === undefined ? 'auto' : value;
  if (choice !== 'auto' && choice !== 'cpu' && choice !== 'cuda' && choice !== 'js') {
    throw new RangeError(`${name} must be 'auto', 'cuda', 'cpu' or 'js', got ${describe(choice)}`);
  }
  if (device !== undefined && (typeof device !== 'number' || !Number.isInteger(device) || device < 0)) {
    throw new RangeError(`${deviceName} must be a non-negative integer, got ${describe(device)}`);
  }
  if (device !== undefined && choice !== 'cuda' && choice !== 'auto') {
    throw new RangeError(`${deviceName} applies only to the cuda backend, but ${name} is '${choice}'`);
  }
  const native = loadNative();
  const info = cudaInfo(native);
  const reason = cudaReason(native, info);
  let cuda: CudaBackend | null = null;
  if (choice === 'cuda' || choice === 'auto') {
    const index = (device as number | undefined) ?? 0;
    if (reason === null && index >= info!.devices.length) {
      throw new RangeError(`${deviceName} is ${index}, but there are ${info!.devices.length} CUDA devices`);
    }
    if (reason !== null && choice === 'cuda') throw new RangeError(`${name} 'cuda' is unavailable: ${reason}`);
    if (reason === null) cuda = { name: 'cuda', impl: cudaBackend(native.binding!, index), device: index, native: native.binding! };
  }
  if (choice === 'cpu' && !native.binding) {
    throw new RangeError(`${name} 'cpu' is unavailable: ${nativeMissingReason(native)}`);
  }
  return { choice, cuda, cudaReason: reason };
}

function calibrationTarget(native: NativeLoad): CalibrationTarget {
  return { addon: native.binding!, addonPath: native.path!, info: native.info!, threads: defaultThreads() };
}

/** What the cost model measures and caches for, for tests: null without the addon. Not part of the public API. */
export function nativeCalibrationTarget(): CalibrationTarget | null {
  const native = loadNative();
  return native.binding ? calibrationTarget(native) : null;
}

/** The constants 'auto' decides with, and the backends it weighs: cuda only when its device could be costed. */
function autoCandidates(native: NativeLoad, cuda: CudaBackend | null): { constants: CostConstants; candidates: BackendName[] } {
  const { constants, cudaReason } = jobConstants(calibrationTarget(native), cuda === null ? null : cuda.device);
  return { constants, candidates: cuda === null || cudaReason !== null ? ['cpu', 'js'] : ['cpu', 'js', 'cuda'] };
}

/**
 * What 'auto' picks for a job: cuda for one on DeviceWeights; otherwise the available backend the cost model
 * (lib/cost-model.ts) predicts to finish first.
 */
function pickAuto(native: NativeLoad, cuda: CudaBackend | null, job: CostedJob): BackendName {
  if (job.onDevice) {
    if (cuda === null) throw new Error('a job on DeviceWeights needs a usable CUDA device');
    return 'cuda';
  }
  if (!native.binding) return 'js';
  const { constants, candidates } = autoCandidates(native, cuda);
  return cheapestBackend(job, constants, candidates);
}

/**
 * What 'auto' would pick for `job` and the seconds the model predicts on each backend it weighs, for benchmarks
 * that print the model beside their measurements. Not part of the public API.
 */
export function explainAuto(job: CostedJob, device = 0): { pick: BackendName; predicted: Predictions } {
  const native = loadNative();
  const option = checkBackendOption('backend', 'auto', 'device', device);
  const pick = pickAuto(native, option.cuda, job);
  if (!native.binding) return { pick, predicted: {} };
  const { constants, candidates } = autoCandidates(native, option.cuda);
  return { pick, predicted: predict(job, constants, candidates) };
}

/** The backend a job runs on: the one the option names, or for 'auto' the one the cost model picks for `job`. */
export function resolveBackend(option: BackendOption, job: CostedJob): ResolvedBackend {
  const native = loadNative();
  const name = option.choice === 'auto' ? pickAuto(native, option.cuda, job) : option.choice;
  if (name === 'cuda') return option.cuda!;
  const cuda = option.choice === 'auto' ? option.cuda : null;
  if (name === 'cpu') return { name, impl: cpuOf(native.binding!), cuda };
  if (!native.binding && option.choice !== 'js') warnJsFallback(native);
  return { name, impl: jsBackend, cuda };
}

/** The job backendInfo().auto reports the pick for: one 1024×1024 float32 layer, one training step. */
const REFERENCE_JOB: CostedJob = {
  layers: [{ elements: 1024 * 1024, vectorNorm: false, divide: true }],
  dtype: 'float32',
  precision: 'mixed',
  iterations: 1,
  converge: false,
  legacy: false,
  threads: 0,
  onDevice: false,
};

/**
 * The backends this process can use, what 'auto' picks for a reference job, the cost model's constants (measured,
 * cached or given, on the first call that needs them), and CPU and CUDA details, or why each is unavailable. A
 * malformed SPECTRAL_NORM_COST_MODEL throws its TypeError or RangeError here, as in every 'auto' call.
 */
export function backendInfo(): BackendInfo {
  const native = loadNative();
  const cpuAvailable = native.binding !== null;
  const cuda = cudaInfo(native);
  const cudaUnusable = cudaReason(native, cuda);
  const available: BackendName[] = [...(cudaUnusable === null ? ['cuda' as const] : []), ...(cpuAvailable ? ['cpu' as const] : []), 'js'];
  const option = checkBackendOption('backend', 'auto');
  return {
    available,
    auto: resolveBackend(option, { ...REFERENCE_JOB, threads: defaultThreads() }).name,
    costModel: cpuAvailable ? costModelInfo(calibrationTarget(native), cudaUnusable === null) : noCostModel(),
    cpu: {
      available: cpuAvailable,
      compiled: native.info?.cpu.compiled ?? false,
      simd: native.info ? native.info.cpu.simd : null,
      threads: defaultThreads(),
      path: native.path,
      reason: cpuAvailable ? null : nativeMissingReason(native),
    },
    cuda: {
      available: cudaUnusable === null,
      compiled: cuda?.compiled ?? false,
      devices: cuda?.devices ?? [],
      runtimeVersion: cuda?.runtimeVersion ?? 0,
      driverVersion: cuda?.driverVersion ?? 0,
      reason: cudaUnusable,
    },
    js: { available: true },
  };
}

/** Without the addon there is nothing to choose between: js runs every job, and nothing is measured. */
function noCostModel(): CostModelInfo {
  return { constants: {}, sources: {}, cacheFile: null, cacheError: null, measureMs: 0, cudaReason: null };
}

/**
 * checkBackendOption for jobs with convolution operators, which the cuda backend does not run yet: 'cuda' and a
 * `device` are RangeErrors, whether or not a CUDA device is present, and cuda is no candidate for 'auto'.
 */
export function checkOperatorBackendOption(name: string, value: unknown, deviceName?: string, device?: unknown): BackendOption {
  if (value === 'cuda') {
    throw new RangeError(`${name} 'cuda' does not run convolution operators yet; use 'cpu', 'js' or 'auto'`);
  }
  if (device !== undefined) {
    throw new RangeError(`${deviceName} applies only to the cuda backend, which does not run convolution operators yet`);
  }
  return { ...checkBackendOption(name, value), cuda: null };
}

/**
 * The backend a job with convolution operators runs on (`option` from checkOperatorBackendOption): the one it names,
 * and for 'auto' the CPU, or js without the addon. The cost model is not consulted: it prices matrix products, not
 * convolutions.
 */
export function resolveOperatorBackend(option: BackendOption): ResolvedBackend {
  if (option.choice === 'cuda') throw new Error('resolveOperatorBackend takes an option from checkOperatorBackendOption');
  const native = loadNative();
  if (option.choice !== 'js' && native.binding) return { name: 'cpu', impl: cpuOf(native.binding), cuda: null };
  if (option.choice !== 'js') warnJsFallback(native);
  return { name: 'js', impl: jsBackend, cuda: null };
}
