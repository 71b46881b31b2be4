// Run by core/simd-variants.test.ts in a child process with SN_SIMD set, since the kernel variant is chosen once per
// process. Checks the native backend against the float64 reference and prints the variant it ran.
import { backendInfo } from '../../lib';
import { type ReferenceCase, checkAgainstReference } from '../support/agreement';
import { checkConvKernels } from '../support/conv';

const cases: ReferenceCase[] = [
  { shape: [17, 31], dim: 0 },
  { shape: [5, 1000], dim: 0 },
  { shape: [1000, 5], dim: 0 },
  { shape: [7, 9, 33], dim: 1 },
  { shape: [7, 9, 33], dim: 2 },
  { shape: [613, 509], dim: 0 },
];

for (const dtype of ['float32', 'float64'] as const) {
  for (const c of cases) {
    for (const legacy of [false, true]) checkAgainstReference('cpu', dtype, c, legacy, 2);
  }
}
checkConvKernels();
console.log(`simd=${backendInfo().cpu.simd}`);
