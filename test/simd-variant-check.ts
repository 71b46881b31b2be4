// Run by 20-simd-variants.test.ts in a child process with SN_SIMD set, since the kernel variant is chosen once per
// process. Checks the native backend against the float64 reference and prints the variant it ran.
import { SpectralNormalizer, backendInfo } from '../lib';
import { assertClose, poisoned, product, randomArray, toleranceFor } from './helpers';
import { permutedMatrix, referenceDivide, referenceStep } from './reference';

const shapes: [number[], number][] = [
  [[17, 31], 0],
  [[5, 1000], 0],
  [[1000, 5], 0],
  [[7, 9, 33], 1],
  [[7, 9, 33], 2],
  [[613, 509], 0],
];

for (const dtype of ['float32', 'float64'] as const) {
  for (const [shape, dim] of shapes) {
    for (const legacy of [false, true]) {
      const weight = randomArray(dtype, product(shape));
      const sn = new SpectralNormalizer(shape, { dim, dtype, legacy, iterations: 2, backend: 'cpu' });
      const ref = referenceStep(permutedMatrix(weight, shape, dim), sn.u, sn.v, 2, 1e-12, legacy, dtype);
      const out = poisoned(dtype, weight.length);
      const sigma = sn.step(weight, { out });
      const what = `${process.env.SN_SIMD} ${dtype} [${shape}] dim ${dim}${legacy ? ' legacy' : ''}`;
      assertClose(sigma, ref.sigma, toleranceFor(dtype), `${what} sigma`);
      assertClose(sn.u, ref.u, toleranceFor(dtype), `${what} u`);
      assertClose(sn.v, ref.v, toleranceFor(dtype), `${what} v`);
      assertClose(out, referenceDivide(weight, sigma, dtype), { rtol: 0, atol: 0 }, `${what} out`);
    }
  }
}
console.log(`simd=${backendInfo().cpu.simd}`);
