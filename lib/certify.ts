// Certified bounds on σ of a weight read as a matrix (spectralNorm's `certify` option): lower ≤ σ ≤ upper, rounding
// accounted for. The matrix is a 1×1 convolution on a 1×1 input, whose block-circulant is the matrix itself, so the
// FFT method's certificate (lib/conv/spectrum.ts, native/cpu/conv_spectrum.cpp) applies as it is: one real block,
// its λ_max(A·Aᵀ) resolved and proved by a Cholesky factorisation or Gram iteration with rounding margins.
import type { ConvOperator, FloatArray } from '../binding';
import type { ResolvedBackend } from './backends';
import { absoluteNormBound } from './conv/ratio';
import { lowerBound } from './conv/operator-norm';
import { normBounds } from './conv/rounding';
import type { MatrixGeometry } from './layout';
import { maxAbs, powerOfTwoScaling, scaledCopy } from './scaling';

export interface CertifiedBounds {
  lower: number;
  upper: number;
}

/** The matrix as the operator x ↦ A x: a 1×1 convolution with cout = rows and cin = cols, on a 1×1 input. */
function matrixOperator(rows: number, cols: number): ConvOperator {
  return {
    kind: 'conv2d',
    outChannels: rows,
    inChannels: cols,
    kernelHeight: 1,
    kernelWidth: 1,
    inputHeight: 1,
    inputWidth: 1,
    outputHeight: 1,
    outputWidth: 1,
    strideHeight: 1,
    strideWidth: 1,
    paddingHeight: 0,
    paddingWidth: 0,
    circular: true,
    layout: 'oihw',
  };
}

/**
 * lower ≤ σ(W) ≤ upper for W read with `geometry` (1-D weights: σ = ‖W‖). The weight must be finite. `start`, a
 * right vector from power iteration (cols long), tightens the lower bound when it is the better one.
 */
export function certifiedBounds(
  backend: ResolvedBackend,
  weight: FloatArray,
  geometry: MatrixGeometry,
  threads: number,
  start?: FloatArray,
): CertifiedBounds {
  const largest = maxAbs(weight).value;
  if (largest === 0) return { lower: 0, upper: 0 };
  // Scaled by a power of two (exact), so nothing under- or overflows; the bounds scale back exactly.
  const { down, up } = powerOfTwoScaling(largest);
  if (geometry.vectorNorm) {
    const norm = normBounds(scaledCopy(weight, down));
    return { lower: up(norm.lower), upper: up(norm.upper) };
  }
  const { outer, rows, inner, cols } = geometry;
  const matrix = new Float64Array(rows * cols);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < inner; i++) matrix[r * cols + o * inner + i] = down(weight[(o * rows + r) * inner + i]);
    }
  }
  const op = matrixOperator(rows, cols);
  const vector = new Float64Array(cols);
  const spectrum = backend.impl.convSpectrum({
    weight: matrix,
    operator: op,
    gridHeight: 1,
    gridWidth: 1,
    phasesHeight: 1,
    phasesWidth: 1,
    rowTaps: new Int32Array(2),
    colTaps: new Int32Array(2),
    threads,
    vector,
  });
  const absolute = absoluteNormBound(matrix, op);
  let lower = lowerBound(backend, matrix, op, vector, threads, absolute);
  if (start !== undefined && start.length === cols) {
    lower = Math.max(lower, lowerBound(backend, matrix, op, Float64Array.from(start), threads, absolute));
  }
  return { lower: up(lower), upper: up(spectrum.upper) };
}
