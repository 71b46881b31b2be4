// Which backends this process can use, and which one a call gets. The loader tries its candidates in order and
// keeps every error, so a backend that cannot load can say why.
import { availableParallelism } from 'node:os';
import * as path from 'node:path';

import type { Backend, CudaDevice, NativeAddon, NativeInfo } from '../binding';
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

const CUDA_NOT_IMPLEMENTED = 'the CUDA kernels are not part of this version of spectral-norm';

function cudaReason(native: NativeLoad): string {
  if (!native.info) return `the native addon did not load (${native.errors.join('; ')})`;
  const cuda = native.info.cuda;
  if (!cuda.compiled || cuda.devices.length === 0) return cuda.reason;
  return CUDA_NOT_IMPLEMENTED;
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
  const cuda = native.info?.cuda;
  const available: BackendName[] = cpuAvailable ? ['cpu', 'js'] : ['js'];
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
      available: false,
      compiled: cuda?.compiled ?? false,
      devices: cuda?.devices ?? [],
      runtimeVersion: cuda?.runtimeVersion ?? 0,
      driverVersion: cuda?.driverVersion ?? 0,
      reason: cudaReason(native),
    },
    js: { available: true },
  };
}

export interface ResolvedBackend {
  name: BackendName;
  impl: Backend;
}

/** The backend a call runs on. Throws a RangeError naming the option when it is unknown or unavailable. */
export function resolveBackend(name: string, value: unknown): ResolvedBackend {
  const choice = value === undefined ? 'auto' : value;
  if (choice !== 'auto' && choice !== 'cpu' && choice !== 'cuda' && choice !== 'js') {
    throw new RangeError(`${name} must be 'auto', 'cuda', 'cpu' or 'js', got ${describe(choice)}`);
  }
  const native = loadNative();
  if (choice === 'js') return { name: 'js', impl: jsBackend };
  if (choice === 'cuda') throw new RangeError(`${name} 'cuda' is unavailable: ${cudaReason(native)}`);
  if (native.binding) return { name: 'cpu', impl: native.binding };
  if (choice === 'cpu') {
    throw new RangeError(`${name} 'cpu' is unavailable: the native addon did not load (${native.errors.join('; ')})`);
  }
  return { name: 'js', impl: jsBackend };
}
