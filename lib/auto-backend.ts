// autoBackend(): what backend 'auto' would pick for a job, without running it, by the same rule every constructor,
// one-shot call and coalesced batch uses (lib/backends.ts resolveBackend, on the cost model of lib/cost-model.ts).
import { type BackendName, checkBackendOption, defaultThreads, resolveBackend } from './backends';
import type { LayerSpec } from './batch';
import { matrixGeometry } from './layout';
import { stepJob } from './options';
import {
  type DType,
  type Precision,
  MAX_ITERATIONS,
  MAX_THREADS,
  checkBoolean,
  checkDim,
  checkDtype,
  checkInteger,
  checkKnownKeys,
  checkObject,
  checkPrecision,
  checkShape,
  describe,
} from './validate';

export interface AutoBackendOptions {
  /** Default 'float32'. */
  dtype?: DType;
  /** Power iterations per training step. Default 1. */
  iterations?: number;
  /** Default 'mixed'. */
  precision?: Precision;
  /** Default false. */
  legacy?: boolean;
  /** CPU threads. Default: the cores this process may use. */
  threads?: number;
  /** The CUDA device (default 0). */
  device?: number;
  /** The weights are DeviceWeights (SpectralNormBatch.toDevice): such steps always run on cuda. Default false. */
  onDevice?: boolean;
}

const OPTION_KEYS = ['dtype', 'iterations', 'precision', 'legacy', 'threads', 'device', 'onDevice'];
const LAYER_KEYS = ['shape', 'dim', 'u', 'v', 'seed', 'name'];

/**
 * The backend `backend: 'auto'` picks for a training step on these layers (described as for SpectralNormBatch) with
 * these options: cuda for weights on a device; otherwise the available backend predicted to finish first.
 */
export function autoBackend(layers: readonly LayerSpec[], options: AutoBackendOptions = {}): BackendName {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, OPTION_KEYS);
  const settings = {
    dtype: checkDtype('options.dtype', opts.dtype),
    iterations: checkInteger('options.iterations', opts.iterations, 1, MAX_ITERATIONS, 1),
    precision: checkPrecision('options.precision', opts.precision),
    legacy: checkBoolean('options.legacy', opts.legacy, false),
    threads: checkInteger('options.threads', opts.threads, 1, MAX_THREADS, defaultThreads()),
  };
  const onDevice = checkBoolean('options.onDevice', opts.onDevice, false);
  const option = checkBackendOption('backend', 'auto', 'options.device', opts.device);
  if (onDevice && option.cuda === null) {
    throw new RangeError(`options.onDevice is true, but the cuda backend is unavailable: ${option.cudaReason}`);
  }
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new TypeError(`layers must be a non-empty array of { shape, dim? }, got ${describe(layers)}`);
  }
  const geometries = layers.map((spec: unknown, i) => {
    const at = `layers[${i}]`;
    if (spec === undefined) throw new TypeError(`${at} must be an object, got undefined`);
    const layer = checkObject(at, spec);
    checkKnownKeys(at, layer, LAYER_KEYS);
    const shape = checkShape(`${at}.shape`, layer.shape);
    return matrixGeometry(shape, checkDim(`${at}.dim`, layer.dim, shape.length), settings.legacy);
  });
  return resolveBackend(option, { ...stepJob(settings, geometries), onDevice }).name;
}
