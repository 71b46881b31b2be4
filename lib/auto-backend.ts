// autoBackend(): what backend 'auto' would pick for a job, without running it, by the same rule every constructor,
// one-shot call and coalesced batch uses (lib/backends.ts resolveBackend, on the cost model of lib/cost-model.ts).
import { type BackendName, resolveBackend, resolveOperatorBackend } from './backends';
import { LAYER_KEYS, type LayerSpec } from './batch';
import { matrixGeometry } from './layout';
import { checkConstructorOptions, stepJob } from './options';
import { type DType, type Precision, checkBoolean, checkDim, checkKnownKeys, checkObject, checkShape, describe } from './validate';

/** autoBackend()'s options: the settings of SpectralNormBatch that the choice depends on, plus onDevice. */
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

/**
 * The backend `backend: 'auto'` picks for a training step on these layers (described as for SpectralNormBatch) with
 * these options: cuda for weights on a device; otherwise the available backend predicted to finish first. Layers with
 * a convolution `operator` run on the CPU (js without the addon): the cuda backend does not run them yet.
 */
export function autoBackend(layers: readonly LayerSpec[], options: AutoBackendOptions = {}): BackendName {
  const opts = checkObject('options', options);
  checkKnownKeys('options', opts, OPTION_KEYS);
  const { onDevice: onDeviceOption, ...common } = opts;
  const operators = Array.isArray(layers) && layers.some((l: unknown) => (l as { operator?: unknown } | null)?.operator !== undefined);
  const { settings } = checkConstructorOptions('options', common, [], operators);
  const onDevice = checkBoolean('options.onDevice', onDeviceOption, false);
  if (onDevice && operators) {
    throw new RangeError('options.onDevice is true, but the cuda backend does not run convolution operators yet');
  }
  if (onDevice && settings.backend.cuda === null) {
    throw new RangeError(`options.onDevice is true, but the cuda backend is unavailable: ${settings.backend.cudaReason}`);
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
  if (operators) return resolveOperatorBackend(settings.backend).name;
  return resolveBackend(settings.backend, { ...stepJob(settings, geometries), onDevice }).name;
}
