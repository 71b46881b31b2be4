// ml-matrix, the most used linear-algebra package on npm: the same power iteration with its mmul, norm and div.
import type { Contender } from './contender';

type MatrixClass = typeof import('ml-matrix').Matrix;

export function mlMatrixContender(): Contender {
  let Matrix: MatrixClass | null = null;
  return {
    name: 'ml-matrix',
    family: 'peer',
    threads: 1,
    async unavailable() {
      try {
        Matrix = (await import('ml-matrix')).Matrix;
        return null;
      } catch (error) {
        return `ml-matrix did not load (${(error as Error).message.split('\n')[0]})`;
      }
    },
    async prepare(workload, weights) {
      const M = Matrix as MatrixClass;
      const layers = workload.matrices.map(([rows, cols], i) => ({
        w: M.from1DArray(rows, cols, weights[i]),
        v: M.columnVector(new Array<number>(cols).fill(1 / Math.sqrt(cols))),
      }));
      return {
        run() {
          for (const l of layers) {
            let u = l.v; // replaced by the first iteration (every workload has k ≥ 1)
            for (let k = 0; k < workload.iterations; k++) {
              u = l.w.mmul(l.v);
              u.div(Math.max(u.norm(), 1e-12));
              const v = u.transpose().mmul(l.w).transpose();
              l.v = v.div(Math.max(v.norm(), 1e-12));
            }
            const sigma = u.dot(l.w.mmul(l.v));
            M.div(l.w, sigma);
          }
        },
      };
    },
  };
}
