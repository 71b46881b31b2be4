// The errors the command reports in one line, `spectral-norm: <what>`: a model file's (exit code 1), naming the
// file and, where known, the tensor; and a usage error (exit code 2): the command line asks for something that
// cannot be done, such as a selection that matches no tensor.
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

export class UsageError extends Error {
  readonly exitCode = 2;

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The first line of an error's message, for one-line reports. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}
