// TensorFlow.js: the same power iteration in tf ops (matMul, l2 normalisation, div), on its pure-JS 'cpu' backend
// and on its WebAssembly backend. Each step reads the result back (dataSync), as a caller needing W/σ would.
import type { Contender, Runner } from './contender';

// The few tf ops used, typed here: tfjs's own declarations need the DOM's WebGL types, which a Node build lacks.
interface Tensor {
  dataSync(): ArrayLike<number>;
  dispose(): void;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  tensor2d(values: Float32Array, shape: [number, number]): Tensor;
  fill(shape: number[], value: number): Tensor;
  keep<T extends Tensor>(t: T): T;
  tidy<T extends Tensor>(fn: () => T): T;
  dispose(ts: Tensor[]): void;
  matMul(a: Tensor, b: Tensor, transposeA?: boolean, transposeB?: boolean): Tensor;
  div(a: Tensor, b: Tensor | number): Tensor;
  mul(a: Tensor, b: Tensor): Tensor;
  maximum(a: Tensor, b: number): Tensor;
  norm(a: Tensor): Tensor;
  sum(a: Tensor): Tensor;
}

// Module names in variables, so that TypeScript does not load those declarations.
const TFJS = '@tensorflow/tfjs';
const TFJS_WASM = '@tensorflow/tfjs-backend-wasm';

let tfModule: Tf | null = null;
let loadError: string | null = null;

async function loadTf(): Promise<Tf | null> {
  if (tfModule || loadError) return tfModule;
  try {
    tfModule = (await import(TFJS)) as Tf;
  } catch (error) {
    loadError = (error as Error).message.split('\n')[0];
  }
  return tfModule;
}

function tfjsContender(backend: 'cpu' | 'wasm'): Contender {
  return {
    name: `tfjs ${backend}`,
    family: 'peer',
    threads: 1,
    async unavailable() {
      const tf = await loadTf();
      if (!tf) return `@tensorflow/tfjs did not load (${loadError})`;
      try {
        if (backend === 'wasm') await import(TFJS_WASM);
        if (!(await tf.setBackend(backend))) return `tf.setBackend('${backend}') failed`;
        return null;
      } catch (error) {
        return `the ${backend} backend did not initialise (${(error as Error).message.split('\n')[0]})`;
      }
    },
    async prepare(workload, weights): Promise<Runner> {
      const tf = tfModule as Tf;
      await tf.setBackend(backend);
      const layers = workload.matrices.map(([rows, cols], i) => ({
        w: tf.tensor2d(weights[i], [rows, cols]),
        v: tf.keep(tf.fill([cols, 1], 1 / Math.sqrt(cols))),
      }));
      return {
        async enter() {
          await tf.setBackend(backend);
        },
        run() {
          for (const l of layers) {
            const out = tf.tidy(() => {
              let v = l.v;
              let u = v; // replaced by the first iteration (every workload has k ≥ 1)
              for (let k = 0; k < workload.iterations; k++) {
                const wv = tf.matMul(l.w, v);
                u = tf.div(wv, tf.maximum(tf.norm(wv), 1e-12));
                const t = tf.matMul(l.w, u, true, false);
                v = tf.div(t, tf.maximum(tf.norm(t), 1e-12));
              }
              const sigma = tf.sum(tf.mul(u, tf.matMul(l.w, v)));
              const next = tf.keep(v);
              l.v.dispose();
              l.v = next;
              return tf.div(l.w, sigma);
            });
            out.dataSync();
            out.dispose();
          }
        },
        dispose() {
          for (const l of layers) tf.dispose([l.w, l.v]);
        },
      };
    },
  };
}

export function tfjsContenders(): Contender[] {
  return [tfjsContender('cpu'), tfjsContender('wasm')];
}
