// σ of one tensor through the library's public API, with any failure named by file and tensor.
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

function named(file: string, tensor: string, error: unknown): ModelFileError {
  if (error instanceof ModelFileError) return error;
  return new ModelFileError(file, `cannot compute σ: ${firstLine(error)}`, tensor);
}

function iterationOptions(dim: number, options: Omit<ComputeOptions, 'exact'>) {
  const { tolerance, maxIterations, backend, threads } = options;
  return { dim, tolerance, maxIterations, backend, threads };
}

export async function sigmaOf(file: string, name: string, values: FloatArray, shape: number[], dim: number, options: ComputeOptions): Promise<SigmaResult> {
  const start = performance.now();
  try {
    if (options.exact) {
      const sigma = exactSpectralNorm(values, shape, { dim });
      return { sigma, iterations: null, converged: null, backend: 'exact', ms: performance.now() - start };
    }
    const r = await spectralNormAsync(values, shape, iterationOptions(dim, options));
    return { sigma: r.sigma, iterations: r.iterations, converged: r.converged, backend: r.backend, ms: performance.now() - start };
  } catch (error) {
    throw named(file, name, error);
  }
}

/** σ, and W/σ into a new array of the same type (the library divides; a zero matrix comes back unchanged). */
export async function normalizedCopy(
  file: string,
  name: string,
  values: FloatArray,
  shape: number[],
  dim: number,
  options: Omit<ComputeOptions, 'exact'>,
): Promise<{ result: SigmaResult & { iterations: number }; out: FloatArray }> {
  const out = values instanceof Float64Array ? new Float64Array(values.length) : new Float32Array(values.length);
  const start = performance.now();
  try {
    const r = await spectralNormalizeAsync(values, shape, { ...iterationOptions(dim, options), out });
    const result = { sigma: r.sigma, iterations: r.iterations, converged: r.converged, backend: r.backend, ms: performance.now() - start };
    return { result, out };
  } catch (error) {
    throw named(file, name, error);
  }
}
