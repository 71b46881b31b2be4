// A convolution as an operator: PyTorch's torch.nn.Conv2d(cin, cout, (kh, kw), stride, padding,
// padding_mode=…, bias=False) on an input [1, cin, h, w]. The checks of its options, its derived sizes, where each
// kernel element lives in either layout, and the circulant that bounds it (or equals it).
import type { ConvOperator } from '../../binding';
import { checkKnownKeys, checkObject, describe } from '../validate';

/** PyTorch's padding_mode: 'zeros' pads with zeros, 'circular' wraps the input around. */
export type PaddingMode = 'zeros' | 'circular';
/** The kernel's layout: 'oihw', PyTorch's [cout, cin, kh, kw]; 'hwio', TF/Keras's [kh, kw, cin, cout]. */
export type KernelLayout = 'oihw' | 'hwio';

/** How a convolution is applied: what `operator` and convSpectralNorm's options describe. */
export interface ConvOptions {
  /** The input's [height, width]. Required. */
  inputSize: readonly number[];
  /** A number or [sh, sw]. Default 1. */
  stride?: number | readonly number[];
  /** A number or [ph, pw], each below the kernel's size in that dimension. Default 0. */
  padding?: number | readonly number[];
  /** Default 'zeros'. 'circular' wraps the input around (PyTorch's padding_mode='circular'). */
  paddingMode?: PaddingMode;
  /** 'oihw' (default): PyTorch's [cout, cin, kh, kw]. 'hwio': TF/Keras's [kh, kw, cin, cout]. */
  layout?: KernelLayout;
}

/** The `operator` option of SpectralNormalizer and of a SpectralNormBatch layer. */
export interface ConvOperatorOptions extends ConvOptions {
  /** The operator: 'conv2d', the only one so far. */
  kind: 'conv2d';
}

export const CONV_OPTION_KEYS = ['inputSize', 'stride', 'padding', 'paddingMode', 'layout'] as const;

/** The largest input or output vector an operator may have: the native side indexes them with 32-bit counts. */
const MAX_VECTOR = 2 ** 31 - 1;

/** PyTorch's output size in one dimension. */
export function outputLength(input: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((input + 2 * padding - kernel) / stride) + 1;
}

function checkPair(name: string, value: unknown, min: number, fallback: number | undefined): [number, number] {
  if (value === undefined && fallback !== undefined) return [fallback, fallback];
  const pair = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => typeof x !== 'number')) {
    throw new TypeError(
      `${name} must be ${fallback === undefined ? '' : 'a number or '}an array [height, width] of integers, got ${describe(value)}`,
    );
  }
  for (const x of pair as number[]) {
    if (!Number.isSafeInteger(x) || x < min) throw new RangeError(`${name} must hold integers >= ${min}, got ${JSON.stringify(value)}`);
  }
  return [pair[0], pair[1]];
}

/**
 * Checks a convolution's options against the kernel's shape and returns the operator. Errors name the options
 * `${name}.inputSize` and so on; `shapeName` names the shape.
 */
export function checkConv(name: string, options: Record<string, unknown>, shape: readonly number[], shapeName: string): ConvOperator {
  const layout = options.layout ?? 'oihw';
  if (layout !== 'oihw' && layout !== 'hwio') {
    throw (typeof layout === 'string' ? RangeError : TypeError)(`${name}.layout must be 'oihw' or 'hwio', got ${describe(layout)}`);
  }
  if (shape.length !== 4) {
    throw new RangeError(`${name}.layout '${layout}' needs a 4-D ${shapeName}, got ${shape.length}-D [${shape.join(', ')}]`);
  }
  const mode = options.paddingMode ?? 'zeros';
  if (mode !== 'zeros' && mode !== 'circular') {
    throw (typeof mode === 'string' ? RangeError : TypeError)(`${name}.paddingMode must be 'zeros' or 'circular', got ${describe(mode)}`);
  }
  if (options.inputSize === undefined) {
    throw new TypeError(`${name}.inputSize is required: the input's [height, width]`);
  }
  const [h, w] = checkPair(`${name}.inputSize`, options.inputSize, 1, undefined);
  const [sh, sw] = checkPair(`${name}.stride`, options.stride, 1, 1);
  const [ph, pw] = checkPair(`${name}.padding`, options.padding, 0, 0);
  const [cout, cin, kh, kw] = layout === 'oihw' ? shape : [shape[3], shape[2], shape[0], shape[1]];
  if (ph >= kh || pw >= kw) {
    throw new RangeError(`${name}.padding [${ph}, ${pw}] must be less than the kernel's size [${kh}, ${kw}]`);
  }
  if (h + 2 * ph < kh || w + 2 * pw < kw) {
    throw new RangeError(`${name}.inputSize [${h}, ${w}] is smaller than the kernel [${kh}, ${kw}] after padding [${ph}, ${pw}]`);
  }
  if (mode === 'circular' && (ph > h || pw > w)) {
    throw new RangeError(`${name}.padding [${ph}, ${pw}] wraps around the input [${h}, ${w}] more than once`);
  }
  const oh = outputLength(h, kh, sh, ph);
  const ow = outputLength(w, kw, sw, pw);
  if (cin * h * w > MAX_VECTOR || cout * oh * ow > MAX_VECTOR) {
    throw new RangeError(`${name}.inputSize [${h}, ${w}] makes an input or output of more than 2^31 - 1 elements`);
  }
  return {
    kind: 'conv2d',
    outChannels: cout,
    inChannels: cin,
    kernelHeight: kh,
    kernelWidth: kw,
    inputHeight: h,
    inputWidth: w,
    outputHeight: oh,
    outputWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    paddingHeight: ph,
    paddingWidth: pw,
    circular: mode === 'circular',
    layout,
  };
}

/** The `operator` option: `{ kind: 'conv2d', ...ConvOptions }`, checked against the weight's shape. */
export function checkOperator(name: string, value: unknown, shape: readonly number[], shapeName: string): ConvOperator {
  const opts = checkObject(name, value);
  checkKnownKeys(name, opts, ['kind', ...CONV_OPTION_KEYS]);
  if (opts.kind !== 'conv2d') throw new RangeError(`${name}.kind must be 'conv2d', got ${describe(opts.kind)}`);
  return checkConv(name, opts, shape, shapeName);
}

/** The options that describe an operator, as a user would pass them (for state() and messages). */
export function operatorOptions(op: ConvOperator): ConvOperatorOptions {
  return {
    kind: 'conv2d',
    inputSize: [op.inputHeight, op.inputWidth],
    stride: [op.strideHeight, op.strideWidth],
    padding: [op.paddingHeight, op.paddingWidth],
    paddingMode: op.circular ? 'circular' : 'zeros',
    layout: op.layout,
  };
}

/** The kernel's shape in its layout. */
export function kernelShape(op: ConvOperator): number[] {
  const { outChannels: o, inChannels: i, kernelHeight: h, kernelWidth: w } = op;
  return op.layout === 'oihw' ? [o, i, h, w] : [h, w, i, o];
}

/** Lengths of the operator's input (v: cin·h·w) and output (u: cout·oh·ow). */
export function inputLength(op: ConvOperator): number {
  return op.inChannels * op.inputHeight * op.inputWidth;
}

export function outputSize(op: ConvOperator): number {
  return op.outChannels * op.outputHeight * op.outputWidth;
}

/** Index of kernel element K[o][c][a][b] in the weight array, in either layout. */
export function kernelIndexer(op: ConvOperator): (o: number, c: number, a: number, b: number) => number {
  const { outChannels: cout, inChannels: cin, kernelHeight: kh, kernelWidth: kw } = op;
  return op.layout === 'oihw' ? (o, c, a, b) => ((o * cin + c) * kh + a) * kw + b : (o, c, a, b) => ((a * kw + b) * cin + c) * cout + o;
}

/**
 * The circulant that bounds the operator, per dimension. The input is split into `phases` polyphase components
 * (x_r[m] = x[phases·m + r]); kernel tap a then reads component `tapPhase[a]` at offset `tapOffset[a]`, and the
 * operator becomes a stride-1 correlation over those components, a restriction of the circular one on a grid of
 * `grid` points (Sedghi et al.'s block-circulant, with the stride folded into the channels).
 */
export interface AxisPlan {
  grid: number;
  phases: number;
  tapPhase: number[];
  tapOffset: number[];
  /** The output is exactly the circulant's rows, each once: σ is the circulant's σ. */
  exact: boolean;
  /** The most times one circulant row appears among the outputs (circular padding beyond (k−1)/2). */
  multiplicity: number;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * One dimension of an input `input` long, kernel `kernel`, stride, padding and mode, with `output` outputs.
 *
 * Zeros: output i reads x[s·i + a − p] = x_r[i + q] with a − p = s·q + r. The indices i + q lie in
 * [qmin, output − 1 + qmax]; on a grid of N ≥ max(H − qmin, output + qmax, H) points (H = ⌈input/s⌉) none of those
 * outside [0, H) wraps into it, so the operator is the circulant restricted to inputs supported on [0, H) and to
 * `output` of its rows: its norm is at most the circulant's.
 *
 * Circular with s | input: x is periodic, so x_r is periodic with period H = input/s and output i is circulant row
 * i mod H. Otherwise the stride-1 circulant of period `input` holds every output as its row s·i − p (mod input).
 */
export function axisPlan(input: number, kernel: number, stride: number, padding: number, output: number, circular: boolean): AxisPlan {
  const tapsFor = (s: number) => {
    const tapPhase: number[] = [];
    const tapOffset: number[] = [];
    for (let a = 0; a < kernel; a++) {
      tapPhase.push(mod(a - padding, s));
      tapOffset.push(Math.floor((a - padding) / s));
    }
    return { tapPhase, tapOffset };
  };
  if (!circular) {
    const H = Math.ceil(input / stride);
    const qmin = Math.floor(-padding / stride);
    const qmax = Math.floor((kernel - 1 - padding) / stride);
    const grid = Math.max(H, H - qmin, output + qmax);
    // No index wraps, every component is H long and every row is kept: the operator is the circulant itself (a 1×1
    // kernel without padding, or non-overlapping patches).
    const exact = input % stride === 0 && grid === H && output === H;
    return { grid, phases: stride, ...tapsFor(stride), exact, multiplicity: 1 };
  }
  const s = input % stride === 0 ? stride : 1;
  const period = input / s;
  // Output i is circulant row (stride/s)·i mod period (the padding is in the taps' offsets): count each row's hits.
  const hits = new Array<number>(period).fill(0);
  for (let i = 0; i < output; i++) hits[mod((stride / s) * i, period)]++;
  const multiplicity = Math.max(...hits);
  const exact = hits.every((n) => n === 1);
  return { grid: period, phases: s, ...tapsFor(s), exact, multiplicity };
}

/** Both dimensions' plans of an operator. */
export interface CirculantPlan {
  rows: AxisPlan;
  cols: AxisPlan;
  exact: boolean;
  multiplicity: number;
}

/** The circulant of the operator as it is, or (stride1) of the same operator with stride 1. */
export function circulantPlan(op: ConvOperator, stride1 = false): CirculantPlan {
  const sh = stride1 ? 1 : op.strideHeight;
  const sw = stride1 ? 1 : op.strideWidth;
  const oh = stride1 ? outputLength(op.inputHeight, op.kernelHeight, 1, op.paddingHeight) : op.outputHeight;
  const ow = stride1 ? outputLength(op.inputWidth, op.kernelWidth, 1, op.paddingWidth) : op.outputWidth;
  const rows = axisPlan(op.inputHeight, op.kernelHeight, sh, op.paddingHeight, oh, op.circular);
  const cols = axisPlan(op.inputWidth, op.kernelWidth, sw, op.paddingWidth, ow, op.circular);
  return { rows, cols, exact: rows.exact && cols.exact, multiplicity: rows.multiplicity * cols.multiplicity };
}
