// The tfjs backends the TF.js tests run on: cpu, and wasm where it loads. The wasm backend of tfjs 4.x has no
// Conv2DBackpropFilter kernel; wasmBackend() registers bench/tfjs-filter-gradient.ts's stand-in for it, which
// test/tfjs/filter-gradient.test.ts checks against the cpu backend's own kernel.
import * as tf from '@tensorflow/tfjs';

import { wasmBackend } from '../../bench/tfjs-filter-gradient';

export type TfBackend = 'cpu' | 'wasm';

/**
 * describe(title) once per tfjs backend, with that backend set for its tests; on wasm, skipped with the reason when
 * the backend cannot load here.
 */
export function describeOnTfBackends(title: string, body: (backend: TfBackend) => void): void {
  for (const backend of ['cpu', 'wasm'] as const) {
    describe(`${title} (tfjs ${backend} backend)`, function () {
      before(async function () {
        const unavailable = backend === 'wasm' ? await wasmBackend() : null;
        if (unavailable !== null) {
          console.log(`      (skipped: ${unavailable})`);
          this.skip();
        }
        await tf.setBackend(backend);
      });
      after(async () => {
        await tf.setBackend('cpu');
      });
      body(backend);
    });
  }
}
