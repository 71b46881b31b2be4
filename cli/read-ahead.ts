// Reading tensor i+1 while σ of tensor i is computed: a producer reads the tensors in order, at most `maxTensors`
// beyond the one the consumer last took and at most `maxBytes` of their values, chunk by chunk, so a tensor larger
// than the budget is still read ahead in part. Memory: the tensors the consumer holds, plus the read-ahead budget
// and the arrays recycled for later tensors, which together stay within the budget plus the largest tensor's values.
//
// Recycling: an array the consumer is done with (recycle()) holds later tensors' values, rather than a new one.
// Fresh memory costs a page fault per 4 KiB page on first touch; on the virtual machines this project runs on that
// is 20-40 µs a page, which made `report` on float16 models ~10× slower than reading the file.
import type { FloatArray } from '../lib';
import type { ModelFile, ModelTensor, ValuesAllocator } from './model';
import { elementCount } from './model';

export interface ReadAheadOptions {
  /** Tensors read beyond the one the consumer took last (default 2). */
  maxTensors?: number;
  /** Bytes of values read ahead, over all of them (default 256 MiB). */
  maxBytes?: number;
  /** Called with each chunk's stored bytes as it is read (the progress bar). */
  onBytes?: (bytes: number) => void;
}

export const READ_AHEAD_TENSORS = 2;
export const READ_AHEAD_BYTES = 256 * 2 ** 20;

class Stopped extends Error {}

/** Bytes of values a tensor becomes in memory: float64 for float64 storage, float32 otherwise. */
export function valueBytes(tensor: ModelTensor): number {
  const perElement = tensor.dtype === 'F64' || tensor.dtype === 'DOUBLE' ? 8 : 4;
  return elementCount(tensor.shape) * perElement;
}

export class ReadAhead {
  /** Each tensor's values while read ahead; dropped once taken, so the consumer alone decides how long they live. */
  private readonly results: (Promise<FloatArray> | undefined)[] = [];
  /** Values bytes charged so far, per tensor index. */
  private readonly charged: number[];
  /** The index the consumer took last: tensors after it are ahead. */
  private taken = -1;
  private aheadBytes = 0;
  private waiters: (() => void)[] = [];
  private stopped = false;
  private readonly maxTensors: number;
  private readonly maxBytes: number;
  /** Arrays' buffers given back by the consumer, oldest first; with the bytes read ahead, at most `spareLimit`. */
  private readonly spare: ArrayBuffer[] = [];
  private readonly spareLimit: number;
  /** Per tensor index: its values' whole buffer was charged when it was taken from `spare` (it is all resident). */
  private readonly prepaid: boolean[];

  constructor(
    private readonly model: ModelFile,
    private readonly order: readonly ModelTensor[],
    private readonly options: ReadAheadOptions = {},
  ) {
    this.maxTensors = options.maxTensors ?? READ_AHEAD_TENSORS;
    this.maxBytes = options.maxBytes ?? READ_AHEAD_BYTES;
    this.charged = order.map(() => 0);
    this.prepaid = order.map(() => false);
    this.spareLimit = this.maxBytes + Math.max(0, ...order.map(valueBytes));
    void this.produce();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.stopped) throw new Stopped();
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.stopped) throw new Stopped();
  }

  private async produce(): Promise<void> {
    for (let i = 0; i < this.order.length; i++) {
      let settle!: { resolve: (v: FloatArray) => void; reject: (e: unknown) => void };
      this.results.push(new Promise<FloatArray>((resolve, reject) => (settle = { resolve, reject })));
      // Never let an unawaited failure (after close) become an unhandled rejection.
      this.results[i]!.catch(() => undefined);
      this.wake();
      const tensor = this.order[i];
      const ratio = valueBytes(tensor) / Math.max(1, tensor.byteLength);
      try {
        await this.until(() => i - this.taken <= this.maxTensors);
        const gate = async (bytes: number) => {
          if (!this.prepaid[i]) await this.charge(i, bytes * ratio);
          this.options.onBytes?.(bytes);
        };
        const values = await this.model.read(tensor, { gate, allocate: this.allocator(i) });
        settle.resolve(values);
      } catch (error) {
        settle.reject(error);
        if (error instanceof Stopped) return;
        // A read error is reported when the consumer reaches that tensor; nothing after it is read.
        return;
      }
    }
  }

  /** Waits until `bytes` more of tensor i's values fit the budget, and charges them while i is ahead. */
  private async charge(i: number, bytes: number): Promise<void> {
    // The tensor the consumer waits for, or holds, is never held back: only tensors ahead of it count.
    await this.until(() => i <= this.taken || this.aheadBytes + bytes <= this.maxBytes || this.aheadBytes === 0);
    if (i > this.taken) {
      this.aheadBytes += bytes;
      this.charged[i] += bytes;
      this.trimSpare();
    }
  }

  /** Drops the oldest spare buffers until they and the bytes read ahead fit `spareLimit`. */
  private trimSpare(): void {
    let total = this.spare.reduce((sum, b) => sum + b.byteLength, 0);
    while (this.spare.length > 0 && total + this.aheadBytes > this.spareLimit) total -= this.spare.shift()!.byteLength;
  }

  /**
   * Tensor i's values array: the smallest recycled buffer that holds it, charged whole to the budget while i is
   * ahead (a recycled buffer is resident already, read or not), else a new array, charged chunk by chunk as read.
   * A buffer over twice the size is left for a larger tensor: a fresh small array costs less than a fresh large one.
   */
  private allocator(i: number): ValuesAllocator {
    return async (count, wide) => {
      const bytes = count * (wide === 'float64' ? 8 : 4);
      const fits = this.spare.filter((b) => b.byteLength >= bytes && b.byteLength <= 2 * bytes);
      if (fits.length > 0) {
        const buffer = fits.reduce((a, b) => (b.byteLength < a.byteLength ? b : a));
        await this.charge(i, buffer.byteLength);
        // Only this producer takes from `spare`, but recycle() may have dropped the buffer while the budget was spent.
        const at = this.spare.indexOf(buffer);
        if (at >= 0) {
          this.spare.splice(at, 1);
          this.prepaid[i] = true;
          return wide === 'float64' ? new Float64Array(buffer, 0, count) : new Float32Array(buffer, 0, count);
        }
        this.uncharge(i);
      }
      return wide === 'float64' ? new Float64Array(count) : new Float32Array(count);
    };
  }

  private uncharge(i: number): void {
    this.aheadBytes -= this.charged[i];
    this.charged[i] = 0;
    this.wake();
  }

  /**
   * Gives back an array of values the consumer is done with (nothing may use it afterwards): its memory holds a
   * later tensor's values. The oldest spare arrays are dropped first, to stay within `spareLimit`.
   */
  recycle(values: FloatArray): void {
    if (this.stopped) return;
    this.spare.push(values.buffer as ArrayBuffer);
    this.trimSpare();
  }

  /** The next tensor's values, in order; the tensors taken before it are no longer counted as read ahead. */
  async next(): Promise<{ tensor: ModelTensor; values: FloatArray }> {
    const i = this.taken + 1;
    if (i >= this.order.length) throw new Error('internal: read past the last tensor');
    this.taken = i;
    this.uncharge(i);
    await this.until(() => this.results.length > i);
    const values = this.results[i]!;
    this.results[i] = undefined;
    return { tensor: this.order[i], values: await values };
  }

  /** Stops reading (after an error elsewhere); pending reads end at their next chunk. */
  close(): void {
    this.stopped = true;
    this.wake();
  }
}
