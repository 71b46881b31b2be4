// The one kind of error a model file can cause: a one-line message naming the file and, where known, the tensor.
export class ModelFileError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly tensor?: string,
  ) {
    super(`${file}: ${tensor === undefined ? '' : `tensor '${tensor}': `}${detail}`);
    this.name = 'ModelFileError';
  }
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}
