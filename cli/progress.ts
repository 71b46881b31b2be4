// A progress bar on stderr (cli-progress) when stderr is a terminal: tensors done, bytes read and the read rate in
// MB/s. Nothing at all in pipes, files or CI logs.
import { Presets, SingleBar } from 'cli-progress';

export interface Progress {
  start(tensors: number, bytes: number): void;
  /** Stored bytes read (counted as they are read, ahead of the computation). */
  bytes(n: number): void;
  /** A tensor is done. */
  tick(name: string): void;
  stop(): void;
}

const SILENT: Progress = { start() {}, bytes() {}, tick() {}, stop() {} };

function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

export function progressBar(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return SILENT;
  const bar = new SingleBar(
    {
      stream,
      format: ' {bar} {value}/{total} tensors | {read} of {size} read | {rate} MB/s | {name}',
      clearOnComplete: true,
      hideCursor: true,
      fps: 5,
    },
    Presets.shades_classic,
  );
  let read = 0;
  let total = 0;
  let started = 0;
  const payload = (name?: string) => {
    const seconds = (performance.now() - started) / 1000;
    return {
      read: size(read),
      size: size(total),
      rate: seconds > 0 ? (read / 1e6 / seconds).toFixed(0) : '0',
      ...(name === undefined ? {} : { name }),
    };
  };
  return {
    start: (tensors, bytes) => {
      total = bytes;
      started = performance.now();
      bar.start(tensors, 0, { ...payload(), name: '' });
    },
    bytes: (n) => {
      read += n;
      bar.update(payload());
    },
    tick: (name) => bar.increment(1, payload(name)),
    stop: () => bar.stop(),
  };
}
