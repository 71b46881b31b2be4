// What every benchmark record says about where and how it ran.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { backendInfo } from '../lib';

export function machine(): Record<string, unknown> {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    simd: backendInfo().cpu.simd,
    loadAverage: os.loadavg(),
    node: process.version,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
  };
}

/** Writes bench/results/<name>-<date>.json with the machine, date and command, and says where. */
export function writeRecord(outDir: string, name: string, script: string, record: Record<string, unknown>): void {
  const date = new Date().toISOString();
  const full = {
    benchmark: name,
    date,
    command: `npm run ${script} -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machine(),
    ...record,
  };
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${name}-${date.slice(0, 10)}.json`);
  fs.writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  console.log(`wrote ${file}`);
}
