// The tensors of a command, read ahead (read-ahead.ts) and computed in order, one at a time on the CPU, or one per
// GPU at a time with --device all. Results come back in the given order, so normalize can write them as they come.
import type { FloatArray } from '../lib';
import type { ModelFile } from './model';
import type { Progress } from './progress';
import { ReadAhead } from './read-ahead';
import type { Selected } from './selection';

/** Computes one tensor on `device` (undefined: the backend's default). */
export type TensorWork<T> = (selected: Selected, values: FloatArray, device: number | undefined) => Promise<T>;

export class TensorPipeline<T> {
  private readonly readAhead: ReadAhead;
  /** Each started job's result until taken (then dropped: a normalized copy must not outlive its write). */
  private readonly started: (Promise<T> | undefined)[] = [];
  private readonly free: (number | undefined)[];
  private taken = 0;
  private readonly concurrency: number;

  /**
   * `devices`: one entry per computation that may run at once (its device, or undefined for the default).
   * `recycleValues`: the work keeps no reference to the values once it settles (report), so their memory can hold
   * a later tensor's values (read-ahead.ts says why that matters); normalize returns them, so it must not.
   */
  constructor(
    model: ModelFile,
    private readonly order: readonly Selected[],
    private readonly work: TensorWork<T>,
    devices: readonly (number | undefined)[],
    private readonly progress: Progress,
    private readonly recycleValues = false,
  ) {
    this.free = [...devices];
    this.concurrency = Math.max(1, devices.length);
    this.readAhead = new ReadAhead(
      model,
      order.map((s) => s.tensor),
      { onBytes: (bytes) => progress.bytes(bytes), recycling: recycleValues },
    );
  }

  private fill(): void {
    const limit = Math.min(this.order.length, this.taken + this.concurrency);
    while (this.started.length < limit) {
      const selected = this.order[this.started.length];
      const job = (async () => {
        const { values } = await this.readAhead.next();
        // At most `concurrency` jobs run, so a device is free: the ones before the window have been taken.
        const device = this.free.shift();
        try {
          const result = await this.work(selected, values, device);
          if (this.recycleValues) this.readAhead.recycle(values);
          return result;
        } finally {
          this.free.push(device);
          this.progress.tick(selected.tensor.name);
        }
      })();
      job.catch(() => undefined);
      this.started.push(job);
    }
  }

  /** The next tensor's result, in order. */
  async next(): Promise<{ selected: Selected; result: T }> {
    this.fill();
    const selected = this.order[this.taken];
    const job = this.started[this.taken]!;
    this.started[this.taken] = undefined;
    this.taken++;
    // The next computation starts when the consumer asks for it, not now: normalize holds this result until it is
    // written, and two W/σ alive at once would break the memory bound (reading ahead continues meanwhile).
    return { selected, result: await job };
  }

  /** Stops reading ahead, after an error. */
  close(): void {
    this.readAhead.close();
  }
}
