// Finds and loads the native addon. The candidates are tried in order and every failure is kept, so that when none
// loads, the warning, backendInfo() and the errors of backend: 'cpu' or 'cuda' can list each path and why (as sharp
// does). docs/development.md says why this is the project's own loader rather than `bindings` or `node-gyp-build`.
import { existsSync } from 'node:fs';
import * as path from 'node:path';

import type { NativeAddon, NativeInfo } from '../binding';
import { WarningCode } from './codes';

/** The package's root: dist/lib/native-loader.js is two folders below it. */
const ROOT = path.resolve(__dirname, '..', '..');

export interface NativeLoad {
  binding: NativeAddon | null;
  info: NativeInfo | null;
  path: string | null;
  /** `path: why` for each candidate that did not load. */
  errors: string[];
  /** SPECTRAL_NORM_DISABLE_NATIVE was set: the addon was not wanted, so falling back to JS is no surprise. */
  disabled: boolean;
}

let nativeLoad: NativeLoad | undefined;

/**
 * Where the addon may be, in order: the build from source (`build/Release`, then `build/Debug`), then the prebuilt
 * binary `npm pack` ships for this platform (`prebuilds/linux-x64`). A build from source comes first because it
 * exists only when someone built it, in particular when the prebuilt did not fit this machine. When
 * SPECTRAL_NORM_BINDING names a .node file, that file alone: an explicit choice that fails should say so, not
 * quietly load another build.
 */
export function nativeCandidates(): string[] {
  const override = process.env.SPECTRAL_NORM_BINDING;
  if (override) return [path.resolve(override)];
  return [
    path.join(ROOT, 'build', 'Release', 'spectral_norm.node'),
    path.join(ROOT, 'build', 'Debug', 'spectral_norm.node'),
    path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'spectral_norm.node'),
  ];
}

/** The addon, loaded once per process. SPECTRAL_NORM_DISABLE_NATIVE=1 skips it, as on a machine without it. */
export function loadNative(): NativeLoad {
  if (nativeLoad) return nativeLoad;
  if (process.env.SPECTRAL_NORM_DISABLE_NATIVE) {
    nativeLoad = { binding: null, info: null, path: null, errors: ['SPECTRAL_NORM_DISABLE_NATIVE is set'], disabled: true };
    return nativeLoad;
  }
  const errors: string[] = [];
  for (const candidate of nativeCandidates()) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(candidate) as NativeAddon;
      const info = binding.backendInfo();
      nativeLoad = { binding, info, path: candidate, errors, disabled: false };
      return nativeLoad;
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      errors.push(`${candidate}: ${existsSync(candidate) ? message : 'not found'}`);
    }
  }
  nativeLoad = { binding: null, info: null, path: null, errors, disabled: false };
  return nativeLoad;
}

/**
 * Why the native backends are missing and what fixes it: one text for the fallback warning, backendInfo() and the
 * errors of backend: 'cpu' or 'cuda'.
 */
export function nativeMissingReason(native: NativeLoad): string {
  const why = `the native addon did not load (${native.errors.join('; ')})`;
  if (native.disabled) return why;
  if (process.env.SPECTRAL_NORM_BINDING) return `${why}; SPECTRAL_NORM_BINDING names the only file tried`;
  return (
    `${why}; run \`npm rebuild spectral-norm\` to install the prebuilt binary again or, where none fits this ` +
    'platform, to build the addon from source (that needs cmake and a C++ compiler)'
  );
}

let warned = false;

/**
 * Called when a call that could have run natively runs on the pure-JS backend because the addon is missing. The first
 * such call in the process emits one warning (code SPECTRAL_NORM_JS_FALLBACK); a deliberate
 * SPECTRAL_NORM_DISABLE_NATIVE does not.
 */
export function warnJsFallback(native: NativeLoad): void {
  if (warned || native.disabled) return;
  warned = true;
  process.emitWarning(`spectral-norm runs on its pure-JS backend, several times slower: ${nativeMissingReason(native)}`, {
    code: WarningCode.JsFallback,
  });
}
