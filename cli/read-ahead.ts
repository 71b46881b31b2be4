// Reading tensor i+1 while σ of tensor i is computed: a producer reads the tensors in order, at most `maxTensors`
// beyond the one the consumer last took and at most `maxBytes` of their values, chunk by chunk, so a tensor larger
// than the budget is still read ahead in part. Memory: the tensors the consumer holds, plus the read-ahead budget.
import type { FloatArray } from '../lib';
import type { ModelFile, ModelTensor } from './model';
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

  constructor(
    private readonly model: ModelFile,
    private readonly order: readonly ModelTensor[],
    private readonly options: ReadAheadOptions = {},
  ) {
    this.maxTensors = options.maxTensors ?? READ_AHEAD_TENSORS;
    this.maxBytes = options.maxBytes ?? READ_AHEAD_BYTES;
    this.charged = order.map(() => 0);
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
        const values = await this.model.read(tensor, async (bytes) => {
          const charge = bytes * ratio;
          // The tensor the consumer waits for, or holds, is never held back: only tensors ahead of it count.
          await this.until(() => i <= this.taken || this.aheadBytes + charge <= this.maxBytes || this.aheadBytes === 0);
          if (i > this.taken) {
            this.aheadBytes += charge;
            this.charged[i] += charge;
          }
          this.options.onBytes?.(bytes);
        });
        settle.resolve(values);
      } catch (error) {
        settle.reject(error);
        if (error instanceof Stopped) return;
        // A read error is reported when the consumer reaches that tensor; nothing after it is read.
        return;
      }
    }
  }

  /** The next tensor's values, in order; the tensors taken before it are no longer counted as read ahead. */
  async next(): Promise<{ tensor: ModelTensor; values: FloatArray }> {
    const i = this.taken + 1;
    if (i >= this.order.length) throw new Error('internal: read past the last tensor');
    this.taken = i;
    this.aheadBytes -= this.charged[i];
    this.charged[i] = 0;
    this.wake();
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
