// One check shared by the agreement suite and the per-SIMD-variant child process: a SpectralNormalizer step and an
// eval step on a random weight, against the independent float64 reference.
import { SpectralNormalizer } from '../../lib';
import { assertClose, poisoned, product, randomArray, toleranceFor } from './helpers';
import { permutedMatrix, referenceDivide, referenceStep } from './reference';

export interface ReferenceCase {
  shape: number[];
  dim: number;
}

export function checkAgainstReference(
  backend: string,
  dtype: 'float32' | 'float64',
  c: ReferenceCase,
  legacy: boolean,
  iterations: number,
): void {
  const at = `${backend} ${dtype} [${c.shape}] dim ${c.dim}${legacy ? ' legacy' : ''}`;
  const tol = toleranceFor(dtype);
  const weight = randomArray(dtype, product(c.shape));
  const sn = new SpectralNormalizer(c.shape, { dim: c.dim, dtype, legacy, iterations, backend: backend as 'cpu' });
  const dim = c.dim < 0 ? c.dim + c.shape.length : c.dim;
  const matrix = permutedMatrix(weight, c.shape.length === 1 && legacy ? [c.shape[0], 1] : c.shape, dim);
  const u0 = sn.u;
  const v0 = sn.v;
  const out = poisoned(dtype, weight.length);
  const sigma = sn.step(weight, { out });
  if (c.shape.length === 1 && !legacy) {
    const norm = Math.hypot(...weight);
    assertClose(sigma, norm, tol, `${at}: sigma of a 1-D weight`);
    assertClose(out, referenceDivide(weight, norm, dtype), tol, `${at}: normalized 1-D weight`);
    return;
  }
  const ref = referenceStep(matrix, u0, v0, iterations, 1e-12, legacy, dtype);
  assertClose(sigma, ref.sigma, tol, `${at}: sigma`);
  assertClose(sn.u, ref.u, tol, `${at}: u`);
  assertClose(sn.v, ref.v, tol, `${at}: v`);
  assertClose(out, referenceDivide(weight, sigma, dtype), { rtol: 0, atol: 0 }, `${at}: out = W/σ exactly, by σ in dtype`);

  // Eval mode reads u and v as they are: σ = u·(W v).
  const evalOut = poisoned(dtype, weight.length);
  const evalSigma = sn.step(weight, { update: false, out: evalOut });
  const evalRef = referenceStep(matrix, sn.u, sn.v, 0, 1e-12, legacy, dtype);
  assertClose(evalSigma, evalRef.sigma, tol, `${at}: eval sigma`);
  assertClose(evalOut, referenceDivide(weight, evalSigma, dtype), { rtol: 0, atol: 0 }, `${at}: eval out`);
}
