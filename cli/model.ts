// What the commands see of a model, whatever its format: its tensors in model order, each readable on demand as
// float32 or float64 in bounded chunks, and a rewrite that streams the model to a new one with some tensors replaced.
import type { FloatArray } from '../lib';

export interface ModelTensor {
  name: string;
  shape: number[];
  /** The dtype as the file states it, e.g. 'F16', 'float32 (uint8-quantized)' or 'FLOAT16'. */
  dtype: string;
  /** Whether the CLI can compute on it: a floating-point tensor of a supported dtype with at least one element. */
  numeric: boolean;
  /**
   * Set when the tensor looks like a weight (a floating-point or unknown dtype) that the CLI cannot compute on, e.g.
   * 'unsupported dtype FLOAT8E4M3FN': a selected tensor of rank ≥ 2 with this set becomes a skipped row, not an error.
   */
  unsupported?: string;
  /** Bytes it occupies in the file(s). */
  byteLength: number;
  /** Its own default `dim`, where the format knows better than the model's default (ONNX ConvTranspose: 1). */
  defaultDim?: number;
}

/**
 * Awaited before each chunk of a tensor is read, with the chunk's size in bytes: the read-ahead holds reading here
 * while its budget is spent, and the progress bar counts the bytes.
 */
export type ReadGate = (bytes: number) => Promise<void>;

/**
 * Memory for a tensor's values: an array of exactly `count` elements of the given type, recycled by the read-ahead
 * (read-ahead.ts) from tensors the command is done with, or new. Its contents are overwritten whole.
 */
export type ValuesAllocator = (count: number, wide: 'float32' | 'float64') => Promise<FloatArray>;

/** How read() paces itself and where its values go; both optional (a plain read allocates and never waits). */
export interface ReadOptions {
  gate?: ReadGate;
  allocate?: ValuesAllocator;
}

/**
 * Called by rewrite() for each selected tensor, in the order writeOrder() gave. Returns the new values (of the type
 * read() gives, and the same length), or null to keep the tensor's bytes exactly as they were.
 */
export type Transform = (tensor: ModelTensor) => Promise<FloatArray | null>;

export interface RewriteResult {
  /** Tensors whose stored dtype changed (dequantized tfjs weights written as float32). */
  widened: string[];
  /** Every file written. */
  files: string[];
}

export type Format = 'safetensors' | 'tfjs' | 'onnx';

export interface ModelFile {
  format: Format;
  /** The path the user named (a file, or the folder it was found in). */
  path: string;
  /** The model's main file: the .safetensors, index, model.json, manifest or .onnx file. */
  file: string;
  /** A few words on how the model is stored, e.g. 'safetensors, 4 shards'. */
  description: string;
  tensors: ModelTensor[];
  /** The default `dim`: 0 for PyTorch's and ONNX's (out, in, ...) layout, -1 for Keras's (..., in, out). */
  defaultDim: number;
  /** Reads one numeric tensor's values (dequantized, half precision widened to float32), chunk by chunk. */
  read(tensor: ModelTensor, options?: ReadOptions): Promise<FloatArray>;
  /** The order in which rewrite() calls its transform for these tensors: the order the output is written in. */
  writeOrder(selected: readonly ModelTensor[]): ModelTensor[];
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
