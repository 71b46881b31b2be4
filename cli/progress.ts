// A progress bar on stderr (cli-progress) when stderr is a terminal; nothing at all in pipes, files or CI logs.
import { Presets, SingleBar } from 'cli-progress';

export interface Progress {
  start(total: number): void;
  tick(name: string): void;
  stop(): void;
}

export function progressBar(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { start() {}, tick() {}, stop() {} };
  const bar = new SingleBar(
    { stream, format: ' {bar} {value}/{total} tensors | {name}', clearOnComplete: true, hideCursor: true },
    Presets.shades_classic,
  );
  return {
    start: (total) => bar.start(total, 0, { name: '' }),
    tick: (name) => bar.increment(1, { name }),
    stop: () => bar.stop(),
  };
}
