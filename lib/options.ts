// The options and arguments SpectralNormalizer and SpectralNormBatch share, checked: the constructor's common
// settings, fromState's runtime options and state header, and a step's or warm-up's own arguments.
import {
  type BackendChoice,
  type BackendOption,
  type ResolvedBackend,
  checkBackendOption,
  checkOperatorBackendOption,
  defaultThreads,
  resolveBackend,
  resolveOperatorBackend,
} from './backends';
import type { CostedJob } from './cost-model';
import type { MatrixGeometry } from './layout';
import {
  type DType,
  type Precision,
  MAX_ITERATIONS,
  MAX_THREADS,
  checkBoolean,
  checkDtype,
  checkPrecision,
  checkInteger,
  checkKnownKeys,
  checkNonNegative,
  checkObject,
} from './validate';

/** Options shared by SpectralNormalizer and SpectralNormBatch. */
export interface CommonOptions {
  /** Power iterations per training step (PyTorch's n_power_iterations). Default 1. */
  iterations?: number;
  /** PyTorch's eps: normalize(x) = x / max(‖x‖, eps), and σ ≤ eps leaves the weight as it is. Default 1e-12. */
  eps?: number;
  /** Default 'float32'. Weights, out, u and v all use it. */
  dtype?: DType;
  /** torch.nn.utils.spectral_norm's order (v first, then u) rather than the parametrization's. Default false. */
  legacy?: boolean;
  /**
   * How float32 products are summed: 'mixed' (default; float32 partial sums of at most 16 products per lane,
   * combined in float64, as fast as the hardware allows) or 'float64' (every product accumulated in float64).
   * Float64 weights always accumulate in float64; the js backend always does.
   */
  precision?: Precision;
  /** 'auto' (default), 'cuda', 'cpu' or 'js'. */
  backend?: BackendChoice;
  /** CPU threads; default: the cores this process may use. */
  threads?: number;
  /** The CUDA device of the cuda backend (default 0); only with backend 'cuda' or 'auto'. */
  device?: number;
}

const COMMON_KEYS = ['iterations', 'eps', 'dtype', 'precision', 'legacy', 'backend', 'threads', 'device'] as const;

export interface Settings {
  iterations: number;
  eps: number;
  dtype: DType;
  precision: Precision;
  legacy: boolean;
  threads: number;
  backend: ResolvedBackend;
}

/** A constructor's settings before 'auto' is resolved, which waits for the layers: the cost model needs their sizes. */
export interface PendingSettings extends Omit<Settings, 'backend'> {
  backend: BackendOption;
}

/**
 * A constructor's options object: checked to be an object with no unknown keys (the common ones plus `ownKeys`),
 * and its common settings (with `operators`, some layer is a convolution operator, which the cuda backend does not
 * run: lib/backends.ts checkOperatorBackendOption). Returns the settings and the object, for the caller's own keys.
 */
export function checkConstructorOptions(
  name: string,
  options: unknown,
  ownKeys: readonly string[],
  operators = false,
): { settings: PendingSettings; opts: Record<string, unknown> } {
  const opts = checkObject(name, options);
  checkKnownKeys(name, opts, [...COMMON_KEYS, ...ownKeys]);
  const checkBackend = operators ? checkOperatorBackendOption : checkBackendOption;
  return {
    settings: {
      iterations: checkInteger(`${name}.iterations`, opts.iterations, 1, MAX_ITERATIONS, 1),
      eps: checkNonNegative(`${name}.eps`, opts.eps, 1e-12),
      dtype: checkDtype(`${name}.dtype`, opts.dtype),
      precision: checkPrecision(`${name}.precision`, opts.precision),
      legacy: checkBoolean(`${name}.legacy`, opts.legacy, false),
      threads: checkInteger(`${name}.threads`, opts.threads, 1, MAX_THREADS, defaultThreads()),
      backend: checkBackend(`${name}.backend`, opts.backend, `${name}.device`, opts.device),
    },
    opts,
  };
}

/** A training step on these layers with these settings, as the cost model sees it. */
export function stepJob(settings: Omit<Settings, 'backend' | 'eps'>, geometries: readonly MatrixGeometry[]): CostedJob {
  return {
    layers: geometries.map((g) => ({ elements: g.rows * g.cols, vectorNorm: g.vectorNorm, divide: true })),
    dtype: settings.dtype,
    precision: settings.precision,
    iterations: settings.iterations,
    converge: false,
    legacy: settings.legacy,
    threads: settings.threads,
    onDevice: false,
  };
}

/**
 * The settings once the layers are known: 'auto' picks the backend for a training step on them, or with `operators`
 * (pending from checkConstructorOptions with operators) the backend for convolution operators.
 */
export function resolveSettings(pending: PendingSettings, geometries: readonly MatrixGeometry[], operators = false): Settings {
  const backend = operators ? resolveOperatorBackend(pending.backend) : resolveBackend(pending.backend, stepJob(pending, geometries));
  return { ...pending, backend };
}

/** fromState's own options: where and how to run, checked under their own names before the state is. */
export function checkRuntimeOptions(options: unknown): Pick<CommonOptions, 'backend' | 'threads' | 'device'> {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['backend', 'threads', 'device']);
  checkBackendOption('options.backend', opts.backend, 'options.device', opts.device);
  checkInteger('options.threads', opts.threads, 1, MAX_THREADS, 1);
  return opts as Pick<CommonOptions, 'backend' | 'threads' | 'device'>;
}

/** The common part of fromState: the state's format and version, checked before anything else. */
export function checkStateHeader(state: unknown, format: string, origin: string): Record<string, unknown> {
  const s = checkObject('state', state);
  if (s.format !== format || s.version !== 1) {
    throw new TypeError(`state must come from ${origin} (format '${format}', version 1)`);
  }
  return s;
}

/** step()'s options: `update` (training or eval mode) and `out`, still to be checked against the weights. */
export function checkStepOptions(options: unknown): { update: boolean; out: unknown } {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, ['update', 'out']);
  return { update: checkBoolean('options.update', opts.update, true), out: opts.out };
}

/** warmup()'s iteration count. */
export function checkWarmupIterations(iterations: unknown): number {
  return checkInteger('iterations', iterations, 1, MAX_ITERATIONS);
}

/**
 * A value a static method hands to the constructor it calls, outside the constructor's public signature: fromState's
 * names for the arguments in error messages. take() clears it, so a construction nested in that one does not see it.
 */
export class ConstructorHandoff<T> {
  private value: T | undefined;

  /** Runs `construct` with `value` waiting for the constructor it calls. */
  with<R>(value: T, construct: () => R): R {
    this.value = value;
    try {
      return construct();
    } finally {
      this.value = undefined;
    }
  }

  /** The value handed over, once; undefined for a construction no `with` made. */
  take(): T | undefined {
    const value = this.value;
    this.value = undefined;
    return value;
  }
}
