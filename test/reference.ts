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

/** PyTorch's power iteration in float64: returns the new u, v and σ = u·(W v). */
export function referenceStep(
  m: ReferenceMatrix,
  u0: ArrayLike<number>,
  v0: ArrayLike<number>,
  iterations: number,
  eps: number,
  legacy: boolean,
): { u: Float64Array; v: Float64Array; sigma: number } {
  let u: Float64Array = Float64Array.from(u0);
  let v: Float64Array = Float64Array.from(v0);
  for (let k = 0; k < iterations; k++) {
    if (legacy) {
      v = normalize(matTVec(m, u), eps);
      u = normalize(matVec(m, v), eps);
    } else {
      u = normalize(matVec(m, v), eps);
      v = normalize(matTVec(m, u), eps);
    }
  }
  return { u, v, sigma: dot(u, matVec(m, v)) };
}
