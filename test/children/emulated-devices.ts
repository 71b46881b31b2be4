// Run by cli/pipeline.test.ts in a child process with SN_EMULATION_DEVICES set (the emulation counts its devices once
// per process): `report --backend cuda --device all` on the given model, printing each row's device and σ as JSON.
// Usage: node emulated-devices.js <model>
import { report } from '../../cli/commands/report';

async function main() {
  const options = { include: [], exclude: [], dims: [], backend: 'cuda' as const, tolerance: 1e-9, maxIterations: 1000, json: true };
  const r = await report(process.argv[2], { ...options, exact: false, device: 'all' }, () => undefined);
  console.log(JSON.stringify(r.tensors.map((t) => ({ name: t.name, device: t.device, sigma: t.sigma }))));
}

void main();
