// Which backends this process can use, and which one a call gets. lib/native-loader.ts loads the addon and keeps
// every error, so a backend that cannot load can say why.
import { availableParallelism } from 'node:os';

import type { Backend, CudaDevice, CudaInfo, NativeAddon } from '../binding';
import { jsBackend } from './js-backend';
import { type NativeLoad, loadNative, nativeMissingReason, warnJsFallback } from './native-loader';
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

/** The cuda backend: the addon's own run and runAsync, with the job sent to one device. */
function cudaBackend(binding: NativeAddon, device: number): Backend {
  return {
    backendInfo: () => binding.backendInfo(),
    run: (job) => binding.run({ ...job, device }),
    runAsync: (job) => binding.runAsync({ ...job, device }),
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
    throw new RangeError(`${name} 'cpu' is unavailable: ${nativeMissingReason(native)}`);
  }
  warnJsFallback(native);
  return { name: 'js', impl: jsBackend };
}
