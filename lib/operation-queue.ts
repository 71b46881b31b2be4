// Async calls as callers expect them: rejections that show where the call was made, and the async operations of
// one normalizer or batch run in call order.

/**
 * Runs an async operation and, if it rejects, gives the error the stack of the code that started it: a rejection
 * from the native worker or from a queued operation otherwise shows only library frames.
 */
export function withCallerStack<T>(operation: () => Promise<T>): Promise<T> {
  const trace = new Error();
  return operation().catch((error: unknown) => {
    if (error instanceof Error && trace.stack) {
      const frames = trace.stack.split('\n').slice(2).join('\n');
      error.stack = `${error.name}: ${error.message}\n${frames}`;
    }
    throw error;
  });
}

/**
 * Orders the async operations of one normalizer or batch: each starts when the previous one settled, in call order,
 * so their results equal running them one by one. Sync calls while one is in flight would race it, so they throw.
 */
export class OperationQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private inFlight = 0;

  constructor(private readonly owner: string) {}

  assertIdle(method: string): void {
    if (this.inFlight > 0) {
      throw new Error(`${this.owner}.${method}() was called while an async operation is in flight; await it first`);
    }
  }

  enqueue<T>(operation: () => Promise<T>): Promise<T> {
    this.inFlight++;
    const result = withCallerStack(() => this.tail.then(operation));
    const settled = result.then(
      () => this.inFlight--,
      () => this.inFlight--,
    );
    this.tail = settled;
    return result;
  }
}
