// spectral-norm info: the backends and devices, as backendInfo() reports them.
import { backendInfo } from '../../lib';

export function info(json: boolean, out: (text: string) => void): void {
  const i = backendInfo();
  if (json) {
    out(JSON.stringify(i, null, 2));
    return;
  }
  const lines = [
    `backends available: ${i.available.join(', ')} (auto picks ${i.auto})`,
    i.cpu.available
      ? `cpu:  native addon, ${i.cpu.simd} kernels, ${i.cpu.threads} threads by default (${i.cpu.path})`
      : `cpu:  unavailable: ${i.cpu.reason}`,
    i.cuda.available
      ? `cuda: ${i.cuda.devices.map((d) => `${d.index}: ${d.name} (sm ${d.computeCapability})`).join('; ')}`
      : `cuda: unavailable: ${i.cuda.reason}`,
    ...i.cuda.devices.map(
      (d) => `      device ${d.index}: ${d.name}, compute ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(1)} GiB`,
    ),
    'js:   pure TypeScript, always available',
  ];
  out(lines.join('\n'));
}
