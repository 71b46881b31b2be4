// Certified σ for the commands (issue 14): report's --conv-input columns (the operator norm of each 4-D tensor as
// a convolution on that input, and its certified upper bound) and --certify column ([lower, upper] of the matrix σ),
// and normalize --clip's certified division, which guarantees σ ≤ target in the file written.
import { type BackendChoice, type FloatArray, convSpectralNorm, spectralNorm } from '../lib';
import { ModelFileError, firstLine } from './errors';
import { decodeBfloat16, decodeFloat16, encodeBfloat16, encodeFloat16 } from './formats/half';
import type { Format } from './model';

export type PaddingFlag = number | 'same';

/** --conv-input HxW [--stride s] [--padding p|same] [--padding-mode zeros|circular], and --certify. */
export interface BoundsOptions {
  convInput?: [number, number];
  stride?: number;
  padding?: PaddingFlag;
  paddingMode?: 'zeros' | 'circular';
  certify?: boolean;
}

interface Compute {
  backend: BackendChoice;
  threads?: number;
  tolerance: number;
  maxIterations: number;
}

export interface OperatorColumn {
  /** σ of x ↦ conv2d(x, W) on the input, and its certified bounds; or why it could not be computed for this tensor. */
  sigma?: number;
  lower?: number;
  upper?: number;
  method?: 'fft' | 'power-iteration';
  iterations?: number;
  error?: string;
}

export interface Columns {
  operator?: OperatorColumn;
  certified?: { lower: number; upper: number };
}

/** "32x32" or "32" → [32, 32]. */
export function parseConvInput(text: string): [number, number] {
  const parts = text.toLowerCase().split('x');
  const sizes = parts.map((p) => (/^\d+$/.test(p.trim()) ? Number(p) : NaN));
  if (sizes.length === 1) sizes.push(sizes[0]);
  if (sizes.length !== 2 || !sizes.every((s) => Number.isSafeInteger(s) && s >= 1)) {
    throw new Error(`must be HxW with positive integers, e.g. 32x32, got '${text}'`);
  }
  return [sizes[0], sizes[1]];
}

export function parsePadding(text: string): PaddingFlag {
  if (text === 'same') return 'same';
  if (!/^\d+$/.test(text.trim())) throw new Error(`must be a non-negative integer or 'same', got '${text}'`);
  return Number(text);
}

/** The layout a format stores conv kernels in: PyTorch's for safetensors and ONNX's (the same), TF/Keras's for TF.js. */
function layoutOf(format: Format): 'oihw' | 'hwio' {
  return format === 'tfjs' ? 'hwio' : 'oihw';
}

function operatorColumn(values: FloatArray, shape: number[], format: Format, options: BoundsOptions, compute: Compute): OperatorColumn {
  const layout = layoutOf(format);
  const [kh, kw] = layout === 'oihw' ? [shape[2], shape[3]] : [shape[0], shape[1]];
  const same = (k: number) => (k % 2 === 1 ? (k - 1) / 2 : NaN);
  const padding = options.padding === 'same' ? [same(kh), same(kw)] : [options.padding ?? 0, options.padding ?? 0];
  if (padding.some(Number.isNaN)) return { error: `--padding same needs an odd kernel, got ${kh}×${kw}` };
  try {
    const r = convSpectralNorm(values, shape, {
      inputSize: options.convInput!,
      stride: options.stride ?? 1,
      padding,
      paddingMode: options.paddingMode ?? 'zeros',
      layout,
      backend: compute.backend === 'cuda' ? 'auto' : compute.backend,
      threads: compute.threads,
      tolerance: compute.tolerance,
      maxIterations: compute.maxIterations,
    });
    return { sigma: r.sigma, lower: r.lower, upper: r.upper, method: r.method, iterations: r.iterations };
  } catch (error) {
    // A kernel this input, stride or padding does not fit (a 1×1 kernel with --padding 1, say): that tensor only.
    if (error instanceof RangeError && /^options\./.test(error.message)) return { error: error.message.replace(/^options\./, '--') };
    throw error;
  }
}

/** The extra columns of one tensor, as the options ask; failures are named by file and tensor. */
export function boundsColumns(
  file: string,
  name: string,
  values: FloatArray,
  shape: number[],
  dim: number,
  format: Format,
  options: BoundsOptions,
  compute: Compute,
): Columns {
  try {
    const columns: Columns = {};
    if (options.convInput && shape.length === 4) columns.operator = operatorColumn(values, shape, format, options, compute);
    if (options.certify) {
      const r = spectralNorm(values, shape, {
        dim,
        certify: true,
        backend: compute.backend,
        threads: compute.threads,
        tolerance: compute.tolerance,
        maxIterations: compute.maxIterations,
      });
      columns.certified = { lower: r.lower!, upper: r.upper! };
    }
    return columns;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(file, `cannot compute σ: ${firstLine(error)}`, name);
  }
}

/**
 * How a tensor of this dtype (as its format names it: safetensors 'F16', ONNX 'FLOAT16', ...) is written back. Half
 * formats stay half; quantized TF.js weights are written as float32.
 */
function storedAs(dtype: string): 'float64' | 'float32' | 'float16' | 'bfloat16' {
  if (dtype === 'F64' || dtype === 'DOUBLE') return 'float64';
  if (dtype === 'F16' || dtype === 'FLOAT16') return 'float16';
  if (dtype === 'BF16' || dtype === 'BFLOAT16') return 'bfloat16';
  return 'float32';
}

/** The unit roundoff of the dtype a tensor is written back in. */
function storedRoundoff(dtype: string): number {
  return { float64: 2 ** -53, float32: 2 ** -24, float16: 2 ** -11, bfloat16: 2 ** -8 }[storedAs(dtype)];
}

/** values·scale exactly as the file will store them: rounded to the stored dtype (half formats through float32). */
function stored(values: FloatArray, scale: number, dtype: string): FloatArray {
  if (values instanceof Float64Array) return values.map((x) => x * scale);
  const f32 = Float32Array.from(values, (x) => x * scale);
  const as = storedAs(dtype);
  if (as === 'float16') return decodeFloat16(encodeFloat16(f32));
  if (as === 'bfloat16') return decodeBfloat16(encodeBfloat16(f32));
  return f32;
}

export interface ClipDecision {
  /** Certified: σ of the tensor as read is at most this (0 when ‖W‖_F alone shows σ ≤ target). */
  upper: number;
  /** null: σ ≤ target is certified, keep the tensor; else the values to write, whose σ is certified ≤ target. */
  values: FloatArray | null;
}

/** Tries of the direct division before the worst-case one. */
const CLIP_TRIES = 3;

/**
 * normalize --clip, guaranteed: power iteration's σ is an estimate from below, so a tensor is changed, or kept, on a
 * certified upper bound U ≥ σ (‖W‖_F when that is already ≤ target, else spectralNorm's certified bounds). A tensor
 * with U > target becomes W·s rounded to its stored dtype, and is written only once the certified bound of exactly
 * those stored values is ≤ target: s = target/U first, nudged down by what the rounding added if needed. Should that
 * not settle in a few tries, s = target/(U + u·‖W‖_F), u the stored dtype's unit roundoff, holds by construction:
 * rounding each element adds E with ‖E‖₂ ≤ u·s·‖W‖_F, so σ(stored) ≤ s·(U + u·‖W‖_F) = target.
 */
export function certifiedClip(
  file: string,
  name: string,
  values: FloatArray,
  shape: number[],
  dim: number,
  dtype: string,
  target: number,
  compute: Compute,
): ClipDecision {
  const upperOf = (w: FloatArray) => boundsColumns(file, name, w, shape, dim, 'safetensors', { certify: true }, compute).certified!.upper;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += values[i] * values[i];
  // ‖W‖_F, rounded up generously (a sum of n squares is within n·2^-53 relative).
  const frobenius = Math.sqrt(squares) * (1 + values.length * 2 ** -52) + Number.MIN_VALUE;
  if (frobenius <= target) return { upper: 0, values: null };
  const upper = upperOf(values);
  if (upper <= target) return { upper, values: null };
  let scale = target / upper;
  for (let attempt = 0; attempt < CLIP_TRIES; attempt++) {
    const candidate = stored(values, scale, dtype);
    const after = upperOf(candidate);
    if (after <= target) return { upper, values: candidate };
    scale *= (target / after) * (1 - 2 ** -40);
  }
  // The roundings on the way: the product in float64, into float32 (half formats are encoded from float32), then the
  // stored dtype.
  const half = storedAs(dtype) === 'float16' || storedAs(dtype) === 'bfloat16';
  const u = storedRoundoff(dtype) + (half ? 2 ** -24 : 0) + 2 ** -52;
  return { upper, values: stored(values, target / ((upper + u * frobenius) * (1 + 2 ** -50)), dtype) };
}
