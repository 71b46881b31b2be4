// Weights that stay on a CUDA device between steps (SpectralNormBatch.toDevice), and the batch's u and v mirrored
// there. The native DeviceArray owns the memory; this file only lays out the layers in it and keeps host and device
// copies of u and v coherent.
import type { DeviceArray, DevicePowerJob, FloatArray, NativeAddon } from '../binding';
import type { ResolvedBackend } from './backends';
import type { Layer } from './layer-set';
import type { DType } from './validate';

/** Element offsets of consecutive arrays packed into one DeviceArray. */
function packedOffsets(lengths: readonly number[]): { offsets: number[]; total: number } {
  const offsets: number[] = [];
  let total = 0;
  for (const length of lengths) {
    offsets.push(total);
    total += length;
  }
  return { offsets, total };
}

function allocate(backend: ResolvedBackend, dtype: DType, length: number): DeviceArray {
  const native = backend.native as NativeAddon;
  return new native.DeviceArray(dtype, length, backend.device ?? 0);
}

/**
 * A batch's weights on a CUDA device, from `SpectralNormBatch.toDevice(weights)`. `batch.step(handle)` divides them
 * there in place; `download()` copies them back. `dispose()` (or `using`) frees the memory at once; otherwise the
 * garbage collector does. Every method but `dispose()` throws once it is disposed.
 */
export class DeviceWeights {
  #array: DeviceArray | null;
  readonly #offsets: number[];
  readonly #lengths: number[];
  readonly #dtype: DType;
  /** @internal The batch this handle belongs to. */
  readonly owner: object;

  /** @internal Use SpectralNormBatch.toDevice. */
  constructor(owner: object, backend: ResolvedBackend, dtype: DType, weights: readonly FloatArray[]) {
    const lengths = weights.map((w) => w.length);
    const { offsets, total } = packedOffsets(lengths);
    const array = allocate(backend, dtype, total);
    try {
      weights.forEach((w, i) => array.upload(w, offsets[i]));
    } catch (error) {
      array.dispose();
      throw error;
    }
    this.#array = array;
    this.#offsets = offsets;
    this.#lengths = lengths;
    this.#dtype = dtype;
    this.owner = owner;
  }

  get disposed(): boolean {
    return this.#array === null;
  }

  get length(): number {
    return this.#lengths.length;
  }

  /** @internal The device memory, or an Error once disposed. */
  array(method: string): DeviceArray {
    if (this.#array === null) throw new Error(`DeviceWeights.${method}: the handle has been disposed`);
    return this.#array;
  }

  /** @internal Layer i's weight as a device slice. */
  slice(i: number): { array: DeviceArray; offset: number; length: number } {
    return { array: this.array('slice'), offset: this.#offsets[i], length: this.#lengths[i] };
  }

  /** Copies every layer's weight back to new host arrays. */
  download(): FloatArray[] {
    const array = this.array('download');
    return this.#lengths.map((length, i) => {
      const host = this.#dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
      array.download(host, this.#offsets[i]);
      return host;
    });
  }

  /** Frees the device memory now. Idempotent. */
  dispose(): void {
    if (this.#array === null) return;
    this.#array.dispose();
    this.#array = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * The u and v of a batch's layers on the device, created by the first device step. Whichever side changed last is
 * the true copy: a device step makes the device newer, a host step the host; each side is brought up to date only
 * when it is used.
 */
export class DeviceVectors {
  readonly #array: DeviceArray;
  readonly #uOffsets: number[];
  readonly #vOffsets: number[];
  #newer: 'host' | 'device' | 'same' = 'host';

  constructor(
    backend: ResolvedBackend,
    dtype: DType,
    private readonly layers: readonly Layer[],
  ) {
    const lengths = layers.flatMap((l) => [l.state.u.length, l.state.v.length]);
    const { offsets, total } = packedOffsets(lengths);
    this.#uOffsets = layers.map((_, i) => offsets[2 * i]);
    this.#vOffsets = layers.map((_, i) => offsets[2 * i + 1]);
    this.#array = allocate(backend, dtype, total);
  }

  /** Device slices of layer i's u and v, uploaded first when the host copy is newer. */
  slices(i: number): { u: { array: DeviceArray; offset: number; length: number }; v: { array: DeviceArray; offset: number; length: number } } {
    const { u, v } = this.layers[i].state;
    return {
      u: { array: this.#array, offset: this.#uOffsets[i], length: u.length },
      v: { array: this.#array, offset: this.#vOffsets[i], length: v.length },
    };
  }

  toDevice(): void {
    if (this.#newer !== 'host') return;
    this.layers.forEach((layer, i) => {
      this.#array.upload(layer.state.u, this.#uOffsets[i]);
      this.#array.upload(layer.state.v, this.#vOffsets[i]);
    });
    this.#newer = 'same';
  }

  toHost(): void {
    if (this.#newer !== 'device') return;
    this.layers.forEach((layer, i) => {
      this.#array.download(layer.state.u, this.#uOffsets[i]);
      this.#array.download(layer.state.v, this.#vOffsets[i]);
    });
    this.#newer = 'same';
  }

  deviceChanged(): void {
    this.#newer = 'device';
  }

  hostChanged(): void {
    this.#newer = 'host';
  }
}

/** The job of a device step: every layer's weight divided in place on the device, u and v from DeviceVectors. */
export function buildDeviceJob(
  layers: readonly Layer[],
  weights: DeviceWeights,
  vectors: DeviceVectors,
  params: { dtype: DType; iterations: number; eps: number; legacy: boolean; threads: number; device: number },
): DevicePowerJob {
  const n = layers.length;
  return {
    dtype: params.dtype,
    layers: layers.map((layer, i) => {
      const weight = weights.slice(i);
      const { u, v } = vectors.slices(i);
      const g = layer.state.geometry;
      return { weight, out: weight, u, v, outer: g.outer, rows: g.rows, inner: g.inner, vectorNorm: g.vectorNorm };
    }),
    iterations: params.iterations,
    tolerance: -1,
    eps: params.eps,
    legacy: params.legacy,
    threads: params.threads,
    device: params.device,
    sigma: new Float64Array(n),
    status: new Int32Array(n),
    iterationsRun: new Int32Array(n),
    converged: new Uint8Array(n),
  };
}
