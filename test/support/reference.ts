// An independent float64 reference: the matrix is built by an explicit permute-and-flatten copy, and power
// iteration is PyTorch's textbook algorithm, with nothing fused or strided.
export interface ReferenceMatrix {
  rows: number;
  cols: number;
  data: Float64Array; // row-major rows × cols
}

/** PyTorch's weight.permute(dim, *others).flatten(1), as an explicit copy. */
export function permutedMatrix(weight: ArrayLike<number>, shape: readonly number[], dim: number): ReferenceMatrix {
  const order = [dim, ...shape.map((_, i) => i).filter((i) => i !== dim)];
  const permutedShape = order.map((i) => shape[i]);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const total = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(total);
  const index = new Array(shape.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    // `index` counts through the permuted shape; map it back to the original tensor's offset.
    let offset = 0;
    for (let k = 0; k < order.length; k++) offset += index[k] * strides[order[k]];
    data[flat] = weight[offset];
    for (let k = order.length - 1; k >= 0; k--) {
      if (++index[k] < permutedShape[k]) break;
      index[k] = 0;
    }
  }
  return { rows: shape[dim], cols: total / shape[dim], data };
}

export function matVec(m: ReferenceMatrix, x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let s = 0;
    for (let c = 0; c < m.cols; c++) s += m.data[r * m.cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

export function matTVec(m: ReferenceMatrix, y: ArrayLike<number>): Float64Array {
  const x = new Float64Array(m.cols);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) x[c] += m.data[r * m.cols + c] * y[r];
  }
  return x;
}

export function normalize(x: Float64Array, eps: number): Float64Array {
  let s = 0;
  for (const v of x) s += v * v;
  const den = Math.max(Math.sqrt(s), eps);
  return Float64Array.from(x, (v) => v / den);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * PyTorch's power iteration in float64: returns the new u, v and σ = u·(W v). With dtype 'float32', u and v are
 * rounded to float32 after each update, as PyTorch stores them.
 */
export function referenceStep(
  m: ReferenceMatrix,
  u0: ArrayLike<number>,
  v0: ArrayLike<number>,
  iterations: number,
  eps: number,
  legacy: boolean,
  dtype: 'float32' | 'float64' = 'float64',
): { u: Float64Array; v: Float64Array; sigma: number } {
  const store = (x: Float64Array) => (dtype === 'float32' ? x.map(Math.fround) : x);
  let u: Float64Array = Float64Array.from(u0);
  let v: Float64Array = Float64Array.from(v0);
  for (let k = 0; k < iterations; k++) {
    if (legacy) {
      v = store(normalize(matTVec(m, u), eps));
      u = store(normalize(matVec(m, v), eps));
    } else {
      u = store(normalize(matVec(m, v), eps));
      v = store(normalize(matTVec(m, u), eps));
    }
  }
  return { u, v, sigma: dot(u, matVec(m, v)) };
}

/** W/σ in the weight's dtype, as PyTorch divides: by σ rounded to that dtype. */
export function referenceDivide(weight: ArrayLike<number>, sigma: number, dtype: 'float32' | 'float64'): Float64Array {
  const s = dtype === 'float32' ? Math.fround(sigma) : sigma;
  const out = new Float64Array(weight.length);
  for (let i = 0; i < weight.length; i++) out[i] = dtype === 'float32' ? Math.fround(weight[i] / s) : weight[i] / s;
  return out;
}

/**
 * All singular values, largest first, by cyclic Jacobi on the smaller Gram matrix: slow and simple, and sharing no
 * code with the library. Accurate to ~1e-15 relative for the largest; small ones lose precision to the squaring.
 */
export function singularValues(m: ReferenceMatrix): number[] {
  const k = Math.min(m.rows, m.cols);
  const g = Array.from({ length: k }, () => new Float64Array(k));
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      if (m.rows <= m.cols) for (let c = 0; c < m.cols; c++) s += m.data[i * m.cols + c] * m.data[j * m.cols + c];
      else for (let r = 0; r < m.rows; r++) s += m.data[r * m.cols + i] * m.data[r * m.cols + j];
      g[i][j] = s;
    }
  }
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < k; p++) {
      diag += g[p][p] * g[p][p];
      for (let q = p + 1; q < k; q++) off += g[p][q] * g[p][q];
    }
    if (off <= 1e-32 * diag) break;
    for (let p = 0; p < k; p++) {
      for (let q = p + 1; q < k; q++) {
        if (g[p][q] === 0) continue;
        const theta = (g[q][q] - g[p][p]) / (2 * g[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let r = 0; r < k; r++) {
          const gp = g[r][p];
          const gq = g[r][q];
          g[r][p] = c * gp - s * gq;
          g[r][q] = s * gp + c * gq;
        }
        for (let r = 0; r < k; r++) {
          const gp = g[p][r];
          const gq = g[q][r];
          g[p][r] = c * gp - s * gq;
          g[q][r] = s * gp + c * gq;
        }
      }
    }
  }
  return g.map((row, i) => Math.sqrt(Math.max(0, row[i]))).sort((a, b) => b - a);
}
