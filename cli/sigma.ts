// σ of one tensor through the library's public API, with any failure named by file and tensor. NaN or ±Inf in the
// weights (or an overflow in the power iteration) is an outcome, not an error: the caller marks that tensor's row.
import { type BackendChoice, type FloatArray, exactSpectralNorm, spectralNormAsync, spectralNormalizeAsync } from '../lib';
import { ModelFileError, firstLine } from './errors';

export interface ComputeOptions {
  /** exactSpectralNorm (float64, to ~1e-15) instead of power iteration to a tolerance. */
  exact: boolean;
  tolerance: number;
  maxIterations: number;
  backend: BackendChoice;
  threads?: number;
}

export interface SigmaResult {
  sigma: number;
  /** Power iterations run; null for --exact. */
  iterations: number | null;
  converged: boolean | null;
  /** The backend that ran it ('exact' for exactSpectralNorm). */
  backend: string;
  ms: number;
}

/** The weights hold NaN or ±Inf, or the power iteration overflowed: nothing was computed. */
export interface NonFinite {
  nonFinite: string;
  ms: number;
}

function named(file: string, tensor: string, error: unknown): ModelFileError {
  if (error instanceof ModelFileError) return error;
  return new ModelFileError(file, `cannot compute σ: ${firstLine(error)}`, tensor);
}

/** What is wrong with weights the library refused as non-finite: the first NaN or ±Inf, else an overflow. */
function nonFiniteOf(values: FloatArray, ms: number): NonFinite {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) return { nonFinite: `${values[i]} at element ${i}`, ms };
  }
  return { nonFinite: 'overflow in the power iteration (finite weights too large for float32 products)', ms };
}

/** The library's RangeError for NaN or ±Inf in the weights (or an overflow), as opposed to any other failure. */
function isNonFiniteError(error: unknown): boolean {
  return error instanceof RangeError && /NaN or Infinity/.test(error.message);
}

function iterationOptions(dim: number, options: Omit<ComputeOptions, 'exact'>, device: number | undefined) {
  const { tolerance, maxIterations, backend, threads } = options;
  return { dim, tolerance, maxIterations, backend, threads, ...(device === undefined ? {} : { device }) };
}

export async function sigmaOf(
  file: string,
  name: string,
  values: FloatArray,
  shape: number[],
  dim: number,
  options: ComputeOptions,
  device?: number,
): Promise<SigmaResult | NonFinite> {
  const start = performance.now();
  try {
    if (options.exact) {
      const sigma = exactSpectralNorm(values, shape, { dim });
      return { sigma, iterations: null, converged: null, backend: 'exact', ms: performance.now() - start };
    }
    const r = await spectralNormAsync(values, shape, iterationOptions(dim, options, device));
    return { sigma: r.sigma, iterations: r.iterations, converged: r.converged, backend: r.backend, ms: performance.now() - start };
  } catch (error) {
    if (isNonFiniteError(error)) return nonFiniteOf(values, performance.now() - start);
    throw named(file, name, error);
  }
}

/**
 * σ, and W/σ in place: `values` is the command's own decoded copy, so dividing it in place keeps one array per tensor
 * (the library leaves the weights as they were on any error, and a zero matrix comes back unchanged).
 */
export async function normalizeValues(
  file: string,
  name: string,
  values: FloatArray,
  shape: number[],
  dim: number,
  options: Omit<ComputeOptions, 'exact'>,
  device?: number,
): Promise<{ result: SigmaResult & { iterations: number }; out: FloatArray }> {
  const start = performance.now();
  try {
    const r = await spectralNormalizeAsync(values, shape, iterationOptions(dim, options, device));
    const result = { sigma: r.sigma, iterations: r.iterations, converged: r.converged, backend: r.backend, ms: performance.now() - start };
    return { result, out: values };
  } catch (error) {
    if (isNonFiniteError(error)) {
      const { nonFinite } = nonFiniteOf(values, 0);
      throw new ModelFileError(file, `cannot normalize: non-finite weights (${nonFinite}); nothing was written`, name);
    }
    throw named(file, name, error);
  }
}
