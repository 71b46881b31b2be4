// A few steps of the two largest workloads on device-resident weights, for `ncu` on the sweep, reduction, finish and
// commit kernels (bench/gpu-run.sh). Prints nothing but what it ran.
import { SpectralNormBatch } from '../lib';
import { elements, fixedWeight, networks, synthetic } from './networks';

for (const w of [networks().find((n) => n.name === 'biggan-128-d')!, synthetic('large-square-gpu')]) {
  const batch = new SpectralNormBatch(
    w.shapes.map((shape, i) => ({ shape, seed: i })),
    { backend: 'cuda', iterations: 1 },
  );
  const handle = batch.toDevice(w.shapes.map((s, i) => fixedWeight('float32', elements(s), i + 1)));
  for (let i = 0; i < 3; i++) batch.step(handle);
  handle.dispose();
  console.log(`profiled 3 steps of ${w.name} (${w.shapes.length} layers)`);
}
