// The textbook pure-JS step a Node user would write: two matrix-vector products per iteration over a row-major
// Float32Array, σ = u·(W v) as PyTorch computes it, then W/σ. (2k + 3)·|W| bytes per step.
import type { Contender } from './contender';

function normalize(x: Float64Array, eps: number): void {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  const den = Math.max(Math.sqrt(s), eps);
  for (let i = 0; i < x.length; i++) x[i] /= den;
}

function matvec(w: Float32Array, rows: number, cols: number, x: Float64Array, y: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) s += w[base + c] * x[c];
    y[r] = s;
  }
}

function matvecTransposed(w: Float32Array, rows: number, cols: number, x: Float64Array, y: Float64Array): void {
  y.fill(0);
  for (let r = 0; r < rows; r++) {
    const xr = x[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) y[c] += w[base + c] * xr;
  }
}

export function textbookContender(): Contender {
  return {
    name: 'textbook JS',
    family: 'peer',
    threads: 1,
    async unavailable() {
      return null;
    },
    async prepare(workload, weights) {
      const layers = workload.matrices.map(([rows, cols], i) => {
        const u = new Float64Array(rows).fill(1 / Math.sqrt(rows));
        const v = new Float64Array(cols).fill(1 / Math.sqrt(cols));
        return { rows, cols, w: weights[i], u, v, wv: new Float64Array(rows), out: new Float32Array(rows * cols) };
      });
      return {
        run() {
          for (const l of layers) {
            for (let k = 0; k < workload.iterations; k++) {
              matvec(l.w, l.rows, l.cols, l.v, l.u);
              normalize(l.u, 1e-12);
              matvecTransposed(l.w, l.rows, l.cols, l.u, l.v);
              normalize(l.v, 1e-12);
            }
            matvec(l.w, l.rows, l.cols, l.v, l.wv);
            let sigma = 0;
            for (let r = 0; r < l.rows; r++) sigma += l.u[r] * l.wv[r];
            for (let i = 0; i < l.w.length; i++) l.out[i] = l.w[i] / sigma;
          }
        },
      };
    },
  };
}
