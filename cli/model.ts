// What the commands see of a model file, whatever its format: its tensors in file order, each readable on demand
// as float32 or float64, and a rewrite that streams the file to a new one with some tensors replaced.
import type { FloatArray } from '../lib';

export interface ModelTensor {
  name: string;
  shape: number[];
  /** The dtype as the file states it, e.g. 'F16' or 'float32 (uint8-quantized)'. */
  dtype: string;
  /** Whether the CLI can compute on it: a floating-point tensor with at least one element. */
  numeric: boolean;
  /** Bytes it occupies in the file. */
  byteLength: number;
}

/**
 * Called for each selected tensor during a rewrite, in file order, with its values (float32, or float64 for F64).
 * Returns the new values, of the same type and length, or null to keep the tensor's bytes exactly as they were.
 */
export type Transform = (tensor: ModelTensor, values: FloatArray) => Promise<FloatArray | null>;

export interface RewriteResult {
  /** Tensors whose stored dtype changed (dequantized tfjs weights written as float32). */
  widened: string[];
  /** Every file written. */
  files: string[];
}

export interface ModelFile {
  format: 'safetensors' | 'tfjs';
  path: string;
  tensors: ModelTensor[];
  /** The default `dim`: 0 for PyTorch's (out, in, ...) layout, -1 for Keras's (..., in, out). */
  defaultDim: number;
  /** Reads one tensor's values (dequantized, half precision widened to float32). */
  read(tensor: ModelTensor): Promise<FloatArray>;
  /**
   * Writes a model of the same format at `output` (staged, renamed into place only when complete), with the
   * tensors in `selected` passed through `transform`; everything else is copied byte for byte.
   */
  rewrite(output: string, selected: ReadonlySet<ModelTensor>, transform: Transform, inPlace: boolean): Promise<RewriteResult>;
  close(): Promise<void>;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
