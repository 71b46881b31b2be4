// Weights that stay on a CUDA device between steps (SpectralNormBatch.toDevice), and the batch's u and v mirrored
// there. The native DeviceArray owns the memory; this file only lays out the layers in it and keeps host and device
// copies of u and v coherent.
// The typings must check under TypeScript's default lib (ES5) too, which has no Symbol.
/// <reference lib="es2015.symbol" preserve="true" />
import type { DeviceArray, DeviceSlice, FloatArray } from '../binding';
import type { CudaBackend } from './backends';
import type { LayerState } from './engine';
import type { DType } from './validate';

// Symbol.dispose, declared as lib.esnext.disposable and @types/node declare it, so that the typings check without
// either of them (and on TypeScript before 5.2, which has no such lib).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}

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

function allocate(backend: CudaBackend, dtype: DType, length: number): DeviceArray {
  return new backend.native.DeviceArray(dtype, length, backend.device);
}

/**
 * A batch's weights on a CUDA device, from `SpectralNormBatch.toDevice(weights)`. `batch.step(handle)` divides them
 * there in place; `download()` copies them back. `dispose()` (or `using`) frees the memory at once; otherwise the
 * garbage collector does. Every method but `dispose()` throws once it is disposed.
 */
export class DeviceWeights {
  private memory: DeviceArray | null;
  private readonly offsets: number[];
  private readonly lengths: number[];
  private readonly dtype: DType;
  /** @internal The batch this handle belongs to. */
  readonly owner: object;
  /** @internal The backend whose device holds the weights. */
  readonly backend: CudaBackend;

  /** @internal Uploads the weights for SpectralNormBatch.toDevice. */
  static create(owner: object, backend: CudaBackend, dtype: DType, weights: readonly FloatArray[]): DeviceWeights {
    return new DeviceWeights(owner, backend, dtype, weights);
  }

  /**
   * Use SpectralNormBatch.toDevice. Private rather than marked internal: the typings then keep a private
   * constructor, where stripInternal would drop it and leave DeviceWeights constructible with no arguments.
   */
  private constructor(owner: object, backend: CudaBackend, dtype: DType, weights: readonly FloatArray[]) {
    const lengths = weights.map((w) => w.length);
    const { offsets, total } = packedOffsets(lengths);
    const array = allocate(backend, dtype, total);
    try {
      weights.forEach((w, i) => array.upload(w, offsets[i]));
    } catch (error) {
      array.dispose();
      throw error;
    }
    this.memory = array;
    this.offsets = offsets;
    this.lengths = lengths;
    this.dtype = dtype;
    this.owner = owner;
    this.backend = backend;
  }

  /** Whether dispose() has freed the device memory (after which every method but dispose() throws). */
  get disposed(): boolean {
    return this.memory === null;
  }

  /** The number of layers: that of the batch which made the handle. */
  get length(): number {
    return this.lengths.length;
  }

  /** @internal The device memory, or an Error once disposed. */
  array(method: string): DeviceArray {
    if (this.memory === null) throw new Error(`DeviceWeights.${method}: the handle has been disposed`);
    return this.memory;
  }

  /** @internal Every layer's weight as a device slice. */
  slices(): DeviceSlice[] {
    const array = this.array('slices');
    return this.lengths.map((length, i) => ({ array, offset: this.offsets[i], length }));
  }

  /** Copies every layer's weight back to new host arrays. */
  download(): FloatArray[] {
    const array = this.array('download');
    return this.lengths.map((length, i) => {
      const host = this.dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
      array.download(host, this.offsets[i]);
      return host;
    });
  }

  /** Frees the device memory now. Idempotent. */
  dispose(): void {
    if (this.memory === null) return;
    this.memory.dispose();
    this.memory = null;
  }

  /** dispose(), for `using weights = batch.toDevice(hostWeights)`. */
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
  private readonly memory: DeviceArray;
  /** The layers as jobs on the device see them: u and v are slices of the device copy. */
  readonly states: LayerState<DeviceSlice>[];
  private newer: 'host' | 'device' | 'same' = 'host';

  constructor(
    backend: CudaBackend,
    dtype: DType,
    private readonly host: readonly LayerState[],
  ) {
    const { offsets, total } = packedOffsets(host.flatMap((l) => [l.u.length, l.v.length]));
    this.memory = allocate(backend, dtype, total);
    const array = this.memory;
    this.states = host.map((l, i) => ({
      geometry: l.geometry,
      u: { array, offset: offsets[2 * i], length: l.u.length },
      v: { array, offset: offsets[2 * i + 1], length: l.v.length },
    }));
  }

  toDevice(): void {
    if (this.newer !== 'host') return;
    this.host.forEach((layer, i) => {
      this.memory.upload(layer.u, this.states[i].u.offset);
      this.memory.upload(layer.v, this.states[i].v.offset);
    });
    this.newer = 'same';
  }

  toHost(): void {
    if (this.newer !== 'device') return;
    this.host.forEach((layer, i) => {
      this.memory.download(layer.u, this.states[i].u.offset);
      this.memory.download(layer.v, this.states[i].v.offset);
    });
    this.newer = 'same';
  }

  deviceChanged(): void {
    this.newer = 'device';
  }

  hostChanged(): void {
    this.newer = 'host';
  }
}
