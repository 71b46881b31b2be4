// Where the tensors are computed: the devices a command spreads them over (--device N|all), and the words that say
// which backends ran them, including why 'auto' sends small tensors to the pure-JS backend.
import { type BackendChoice, backendInfo } from '../lib';
import { UsageError } from './errors';

export type DeviceChoice = number | 'all';

/** Parses --device: a GPU index or 'all'. */
export function parseDevice(value: string): DeviceChoice {
  if (value === 'all') return 'all';
  if (/^\d+$/.test(value.trim())) return Number(value);
  throw new RangeError("--device must be a GPU index (0, 1, …) or 'all'");
}

/**
 * One entry per computation that may run at once, with its device: every GPU with --device all on the cuda backend
 * (or 'auto' where CUDA is usable); a single entry otherwise, so one GPU or none behaves as without the option.
 */
export function computeSlots(backend: BackendChoice, device: DeviceChoice | undefined, exact: boolean): (number | undefined)[] {
  if (device === undefined) return [undefined];
  if (backend === 'cpu' || backend === 'js' || exact) {
    throw new UsageError(
      `--device applies only to the cuda backend (or auto), but ${exact ? '--exact computes in JavaScript' : `--backend is ${backend}`}`,
    );
  }
  const info = backendInfo();
  const gpus = info.cuda.available ? info.cuda.devices.length : 0;
  if (device !== 'all') {
    if (backend === 'cuda' && device >= gpus) throw new UsageError(`--device ${device}: this machine has ${gpus} CUDA device(s)`);
    return [device];
  }
  if (gpus <= 1) return [gpus === 1 ? 0 : undefined];
  return Array.from({ length: gpus }, (_, i) => i);
}

export interface ComputedRow {
  backend: string | null;
  device: number | null;
  elements: number;
}

/** E.g. "the cpu backend (avx512, 2 threads by default); 1 tensor of ≤ 128 elements on js, by design: …". */
export function describeBackends(rows: readonly ComputedRow[], requested: string): string {
  const computed = rows.filter((r) => r.backend !== null);
  if (computed.length === 0) return `the ${requested} backend`;
  const elements = new Map<string, number>();
  for (const r of computed) elements.set(r.backend!, (elements.get(r.backend!) ?? 0) + r.elements);
  const main = [...elements.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const info = backendInfo();
  let text = `the ${main} backend`;
  if (main === 'cpu') text += ` (${info.cpu.simd}, ${info.cpu.threads} threads by default)`;
  if (main === 'cuda') {
    const devices = [...new Set(computed.filter((r) => r.backend === 'cuda').map((r) => r.device ?? 0))].sort((a, b) => a - b);
    text += devices.length > 1 ? `, spread over ${devices.length} GPUs (${devices.join(', ')})` : ` (GPU ${devices[0]})`;
  }
  const others = computed.filter((r) => r.backend !== main);
  if (others.length > 0 && others.every((r) => r.backend === 'js') && requested === 'auto') {
    const largest = Math.max(...others.map((r) => r.elements));
    text +=
      `; ${others.length} small tensor${others.length > 1 ? 's' : ''} (≤ ${largest} elements) on js, by design: ` +
      "'auto' runs jobs that small in JavaScript, where a native call would cost more than the work";
  } else if (others.length > 0) {
    text += `; also ${[...new Set(others.map((r) => r.backend))].join(', ')} for ${others.length} tensor(s)`;
  }
  return text;
}
