// How a weight tensor of a given shape is read as a matrix, in place.

/**
 * PyTorch's `weight.permute(dim, *others).flatten(1)`, read in place: element (r, o·inner + i) of the matrix is
 * weight[(o·rows + r)·inner + i], with outer = prod(shape[:dim]), rows = shape[dim], inner = prod(shape[dim+1:]).
 */
export interface MatrixGeometry {
  outer: number;
  rows: number;
  inner: number;
  /** Columns of the matrix: outer·inner. */
  cols: number;
  /** A 1-D weight under the parametrization API: σ = ‖W‖, with no u or v (their lengths are 0). */
  vectorNorm: boolean;
  /** Lengths of u and v. */
  uLength: number;
  vLength: number;
}

export function matrixGeometry(shape: readonly number[], dim: number, legacy: boolean): MatrixGeometry {
  const product = (from: number, to: number) => shape.slice(from, to).reduce((a, b) => a * b, 1);
  const outer = product(0, dim);
  const rows = shape[dim];
  const inner = product(dim + 1, shape.length);
  // PyTorch's parametrization treats a 1-D weight as a vector (F.normalize); the legacy hook reshapes it to n×1.
  const vectorNorm = shape.length === 1 && !legacy;
  return {
    outer,
    rows,
    inner,
    cols: outer * inner,
    vectorNorm,
    uLength: vectorNorm ? 0 : rows,
    vLength: vectorNorm ? 0 : outer * inner,
  };
}
