// The convolution and its transpose in plain TypeScript, summed in float64: the js backend's operator and the
// reference the native kernels are tested against. Exactly PyTorch's F.conv2d(x, W, stride, padding) with zeros or
// circular padding on one image, and F.conv_transpose2d's adjoint of it.
import type { ConvOperator } from '../../binding';
import { kernelIndexer } from './geometry';

/** Where padded input coordinate `i` (in [−p, n + p)) reads the input: an index in [0, n), or −1 for a zero. */
function sourceIndex(n: number, circular: boolean): (i: number) => number {
  return circular ? (i) => ((i % n) + n) % n : (i) => (i >= 0 && i < n ? i : -1);
}

/**
 * For each output position i and tap a, the input position read (−1: padding zero). Shared by the convolution and
 * its transpose, which reads the same pairs the other way round.
 */
function taps(input: number, output: number, kernel: number, stride: number, padding: number, circular: boolean): Int32Array {
  const source = sourceIndex(input, circular);
  const table = new Int32Array(output * kernel);
  for (let i = 0; i < output; i++) {
    for (let a = 0; a < kernel; a++) table[i * kernel + a] = source(stride * i + a - padding);
  }
  return table;
}

/** y = conv2d(x, W): x is [cin, h, w], y is [cout, oh, ow], both row-major. */
export function convForward(weight: ArrayLike<number>, op: ConvOperator, x: ArrayLike<number>, y: Float64Array): void {
  const { outChannels: cout, inChannels: cin, kernelHeight: kh, kernelWidth: kw } = op;
  const { inputHeight: h, inputWidth: w, outputHeight: oh, outputWidth: ow } = op;
  const rowTaps = taps(h, oh, kh, op.strideHeight, op.paddingHeight, op.circular);
  const colTaps = taps(w, ow, kw, op.strideWidth, op.paddingWidth, op.circular);
  const at = kernelIndexer(op);
  y.fill(0, 0, cout * oh * ow);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cin; c++) {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const k = weight[at(o, c, a, b)];
          if (k === 0) continue;
          for (let i = 0; i < oh; i++) {
            const r = rowTaps[i * kh + a];
            if (r < 0) continue;
            const xRow = (c * h + r) * w;
            const yRow = (o * oh + i) * ow;
            for (let j = 0; j < ow; j++) {
              const q = colTaps[j * kw + b];
              if (q >= 0) y[yRow + j] += k * x[xRow + q];
            }
          }
        }
      }
    }
  }
}

/** t = conv2dᵀ(y): the adjoint, x-shaped [cin, h, w] from y-shaped [cout, oh, ow] (F.conv_transpose2d). */
export function convTranspose(weight: ArrayLike<number>, op: ConvOperator, y: ArrayLike<number>, t: Float64Array): void {
  const { outChannels: cout, inChannels: cin, kernelHeight: kh, kernelWidth: kw } = op;
  const { inputHeight: h, inputWidth: w, outputHeight: oh, outputWidth: ow } = op;
  const rowTaps = taps(h, oh, kh, op.strideHeight, op.paddingHeight, op.circular);
  const colTaps = taps(w, ow, kw, op.strideWidth, op.paddingWidth, op.circular);
  const at = kernelIndexer(op);
  t.fill(0, 0, cin * h * w);
  for (let c = 0; c < cin; c++) {
    for (let o = 0; o < cout; o++) {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const k = weight[at(o, c, a, b)];
          if (k === 0) continue;
          for (let i = 0; i < oh; i++) {
            const r = rowTaps[i * kh + a];
            if (r < 0) continue;
            const tRow = (c * h + r) * w;
            const yRow = (o * oh + i) * ow;
            for (let j = 0; j < ow; j++) {
              const q = colTaps[j * kw + b];
              if (q >= 0) t[tRow + q] += k * y[yRow + j];
            }
          }
        }
      }
    }
  }
}
