// Which backends this process can use, and which one a call gets. The loader tries its candidates in order and
// keeps every error, so a backend that cannot load can say why.
import { availableParallelism } from 'node:os';
import * as path from 'node:path';

import type { Backend, CudaDevice, CudaInfo, NativeAddon, NativeInfo } from '../binding';
import { jsBackend } from './js-backend';
import { describe } from './validate';

export type BackendName = 'cpu' | 'cuda' | 'js';
export type BackendChoice = BackendName | 'auto';

export interface BackendInfo {
  /** The backends a call may request in this process. */
  available: BackendName[];
  /** What `backend: 'auto'` (the default) picks. */
  auto: BackendName;
  cpu: {
    available: boolean;
    /** The native addon (and with it the CPU backend) was built and loaded. */
    compiled: boolean;
    /** The kernel variant the running CPU selected ('avx512', 'avx2', 'sse2'), or null without the addon. */
    simd: string | null;
    /** Threads a call uses by default (the `threads` option overrides it). */
    threads: number;
    /** Where the addon was loaded from, or why it could not be. */
    path: string | null;
    reason: string | null;
  };
  cuda: {
    available: boolean;
    /** The addon was built with the CUDA toolkit. */
    compiled: boolean;
    devices: CudaDevice[];
    runtimeVersion: number;
    driverVersion: number;
    reason: string | null;
  };
  js: { available: true };
}

const ROOT = path.resolve(__dirname, '..', '..');

interface NativeLoad {
  binding: NativeAddon | null;
  info: NativeInfo | null;
  path: string | null;
  errors: string[];
}

let nativeLoad: NativeLoad | undefined;

/**
 * Candidates, in order: the local Release and Debug builds; or, when SPECTRAL_NORM_BINDING names a .node file, that
 * file alone (an explicit choice that fails should say so, not quietly load another build).
 * SPECTRAL_NORM_DISABLE_NATIVE=1 skips them all, as on a machine where the addon could not be built.
 */
function loadNative(): NativeLoad {
  if (nativeLoad) return nativeLoad;
  if (process.env.SPECTRAL_NORM_DISABLE_NATIVE) {
    nativeLoad = { binding: null, info: null, path: null, errors: ['SPECTRAL_NORM_DISABLE_NATIVE is set'] };
    return nativeLoad;
  }
  const override = process.env.SPECTRAL_NORM_BINDING;
  const candidates = override
    ? [path.resolve(override)]
    : [path.join(ROOT, 'build', 'Release', 'spectral_norm.node'), path.join(ROOT, 'build', 'Debug', 'spectral_norm.node')];
  const errors: string[] = [];
  for (const candidate of candidates) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(candidate) as NativeAddon;
      const info = binding.backendInfo();
      nativeLoad = { binding, info, path: candidate, errors };
      return nativeLoad;
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      errors.push(`${candidate}: ${message}`);
    }
  }
  nativeLoad = { binding: null, info: null, path: null, errors };
  return nativeLoad;
}

/** The CUDA part of the addon's report, asked afresh: a sticky device error since load makes the backend unusable. */
function cudaInfo(native: NativeLoad): CudaInfo | null {
  return native.binding ? native.binding.backendInfo().cuda : null;
}

/** Why the cuda backend cannot run, or null when it can. */
function cudaReason(native: NativeLoad, cuda: CudaInfo | null): string | null {
  if (!cuda) return `the native addon did not load (${native.errors.join('; ')})`;
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

/** The loaded native addon, for benchmarks; null when it did not load. Not part of the public API. */
export function nativeAddon(): NativeAddon | null {
  return loadNative().binding;
}

export function defaultThreads(): number {
  const native = loadNative();
  return native.info ? native.info.cpu.hardwareThreads : availableParallelism();
}

export function backendInfo(): BackendInfo {
  const native = loadNative();
  const cpuAvailable = native.binding !== null;
  const cuda = cudaInfo(native);
  const cudaUnusable = cudaReason(native, cuda);
  const available: BackendName[] = [...(cudaUnusable === null ? ['cuda' as const] : []), ...(cpuAvailable ? ['cpu' as const] : []), 'js'];
  return {
    available,
    auto: available[0],
    cpu: {
      available: cpuAvailable,
      compiled: native.info?.cpu.compiled ?? false,
      simd: native.info ? native.info.cpu.simd : null,
      threads: defaultThreads(),
      path: native.path,
      reason: cpuAvailable ? null : `the native addon did not load: ${native.errors.join('; ')}`,
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

export type ResolvedBackend =
  | { name: 'cpu' | 'js'; impl: Backend }
  | {
      name: 'cuda';
      impl: Backend;
      /** The CUDA device every job goes to. */
      device: number;
      /** The addon itself: it allocates device memory and runs jobs on device slices (lib/device.ts). */
      native: NativeAddon;
    };

/** The cuda backend: the one that can hold weights in device memory. */
export type CudaBackend = Extract<ResolvedBackend, { name: 'cuda' }>;

/**
 * 'auto' gives a job of at most this many weight elements (all layers together) to the pure-JS backend: there the
 * native call's fixed cost, about 3 µs of argument unmarshalling, is more than the work. Measured side by side on the
 * development machine (2026-11-26): 8×8 took 1.2–3.6 µs in JS and 3.2–3.9 µs native, 16×16 about the same in both,
 * and from 32×32 on native wins (3.5 against 7.4 µs; 4.4 against 19 µs at 64×64).
 */
export const AUTO_JS_MAX_ELEMENTS = 256;

/**
 * The backend a call runs on. Throws a RangeError naming the option when it is unknown or unavailable. `device`
 * (named `deviceName` in errors) picks the GPU of the cuda backend, and only applies to it. `elements`, the job's
 * weight elements when known, lets 'auto' pick by size class.
 */
export function resolveBackend(
  name: string,
  value: unknown,
  deviceName?: string,
  device?: unknown,
  elements?: number,
): ResolvedBackend {
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
  if (choice === 'js') return { name: 'js', impl: jsBackend };
  if (choice === 'cuda' || choice === 'auto') {
    const cuda = cudaInfo(native);
    const reason = cudaReason(native, cuda);
    const index = (device as number | undefined) ?? 0;
    if (reason === null && index >= cuda!.devices.length) {
      throw new RangeError(`${deviceName} is ${index}, but there are ${cuda!.devices.length} CUDA devices`);
    }
    if (reason === null) return { name: 'cuda', impl: cudaBackend(native.binding!, index), device: index, native: native.binding! };
    if (choice === 'cuda') throw new RangeError(`${name} 'cuda' is unavailable: ${reason}`);
  }
  if (native.binding) {
    if (choice === 'auto' && elements !== undefined && elements <= AUTO_JS_MAX_ELEMENTS) return { name: 'js', impl: jsBackend };
    return { name: 'cpu', impl: native.binding };
  }
  if (choice === 'cpu') {
    throw new RangeError(`${name} 'cpu' is unavailable: the native addon did not load (${native.errors.join('; ')})`);
  }
  return { name: 'js', impl: jsBackend };
}

/**
 * The backend for work with convolution operators: as resolveBackend, except that the cuda backend does not run
 * them yet, so 'cuda' (or a `device`) is a RangeError and 'auto' picks the CPU (or js) instead.
 */
export function resolveOperatorBackend(
  name: string,
  value: unknown,
  deviceName?: string,
  device?: unknown,
  elements?: number,
): ResolvedBackend {
  if (value === 'cuda') {
    throw new RangeError(`${name} 'cuda' does not run convolution operators yet; use 'cpu', 'js' or 'auto'`);
  }
  if (device !== undefined) {
    throw new RangeError(`${deviceName} applies only to the cuda backend, which does not run convolution operators yet`);
  }
  const resolved = resolveBackend(name, value, deviceName, undefined, elements);
  return resolved.name === 'cuda' ? resolveBackend(name, nativeAddon() ? 'cpu' : 'js') : resolved;
}
