// Reading tensor i+1 while σ of tensor i is computed: a producer reads the tensors in order, at most `maxTensors`
// beyond the one the consumer last took and at most `maxBytes` of their values, chunk by chunk, so a tensor larger
// than the budget is still read ahead in part. Memory: the tensors the consumer holds, plus the read-ahead budget;
// with recycling, the arrays kept for later tensors too, all together within 2× the largest tensor plus the budget.
//
// Recycling (options.recycling): an array the consumer is done with (recycle()) holds a later tensor's values,
// rather than a new one. Fresh memory costs a page fault per 4 KiB page on first touch; on the virtual machines this
// project runs on that is 20-40 µs a page, which made `report` on float16 models ~10× slower than reading the file.
// So that any recycled buffer fits any large tensor, the large tensors' buffers all have the largest one's size
// (pages never written are never resident); small tensors, cheap to fault in, get arrays of their own size.
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
  /** The consumer gives back the values it is done with (recycle()), to hold later tensors' values. */
  recycling?: boolean;
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
  /** Arrays' buffers given back by the consumer, oldest first; see `spareLimit`. */
  private readonly spare: ArrayBuffer[] = [];
  /** With recycling: the bytes of the arrays handed to the consumer and not given back yet. */
  private held = 0;
  /** The spare buffers, the bytes read ahead and those held stay within this: 2× the largest tensor + the budget. */
  private readonly spareLimit: number;
  /** The largest tensor's values bytes: the size of every recycled buffer. */
  private readonly largest: number;
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
    this.largest = Math.max(0, ...order.map(valueBytes));
    this.spareLimit = this.maxBytes + 2 * this.largest;
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

  /** Drops the oldest spare buffers until they, the bytes read ahead and the bytes held fit `spareLimit`. */
  private trimSpare(): void {
    let total = this.spare.reduce((sum, b) => sum + b.byteLength, 0) + this.aheadBytes + this.held;
    while (this.spare.length > 0 && total > this.spareLimit) total -= this.spare.shift()!.byteLength;
  }

  /**
   * Tensor i's values array. A large tensor (a quarter of the largest or more) takes a recycled buffer, charged
   * whole to the budget while i is ahead (it is resident already, read or not), or else a new buffer of the largest
   * tensor's size, charged chunk by chunk as read. A small tensor gets a new array of its own size.
   */
  private allocator(i: number): ValuesAllocator {
    return async (count, wide) => {
      const bytes = count * (wide === 'float64' ? 8 : 4);
      const view = (buffer: ArrayBuffer) => (wide === 'float64' ? new Float64Array(buffer, 0, count) : new Float32Array(buffer, 0, count));
      if (!this.options.recycling || 4 * bytes < this.largest) return view(new ArrayBuffer(bytes));
      // A buffer the consumer is about to give back beats a new one: wait for one while the budget has no room.
      await this.until(
        () => this.spare.length > 0 || i <= this.taken || this.aheadBytes + this.largest <= this.maxBytes || this.aheadBytes === 0,
      );
      if (this.spare.length > 0) {
        const buffer = this.spare[this.spare.length - 1];
        await this.charge(i, buffer.byteLength);
        // Only this producer takes from `spare`, but recycle() may have dropped the buffer while the budget was spent.
        const at = this.spare.indexOf(buffer);
        if (at >= 0) {
          this.spare.splice(at, 1);
          this.prepaid[i] = true;
          return view(buffer);
        }
        this.uncharge(i);
      }
      return view(new ArrayBuffer(this.largest));
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
    if (!this.options.recycling) return;
    this.held -= values.buffer.byteLength;
    if (this.stopped || values.buffer.byteLength !== this.largest) return;
    this.spare.push(values.buffer as ArrayBuffer);
    this.trimSpare();
    this.wake();
  }

  /** The next tensor's values, in order; the tensors taken before it are no longer counted as read ahead. */
  async next(): Promise<{ tensor: ModelTensor; values: FloatArray }> {
    const i = this.taken + 1;
    if (i >= this.order.length) throw new Error('internal: read past the last tensor');
    this.taken = i;
    this.uncharge(i);
    await this.until(() => this.results.length > i);
    const values = await this.results[i]!;
    this.results[i] = undefined;
    if (this.options.recycling) {
      this.held += values.buffer.byteLength;
      this.trimSpare();
    }
    return { tensor: this.order[i], values };
  }

  /** Stops reading (after an error elsewhere); pending reads end at their next chunk. */
  close(): void {
    this.stopped = true;
    this.wake();
  }
}
