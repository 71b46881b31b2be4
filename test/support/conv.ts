// References for convolution operators: the dense matrix of an operator built column by column in float64, the FFT
// formula for circular convolutions written out directly (a DFT per frequency, each block's σ by exactSpectralNorm),
// and PyTorch's power iteration through a convolution and its transpose.
import type { ConvOperator } from '../../binding';
import { type ConvOptions, SpectralNormalizer, convSpectralNorm, exactSpectralNorm } from '../../lib';
import { checkConv, kernelIndexer } from '../../lib/conv/geometry';
import { convForward, convTranspose } from '../../lib/conv/reference';
import { gaussian, random, randomInt } from './helpers';

export function operatorOf(shape: readonly number[], options: ConvOptions): ConvOperator {
  return checkConv('options', options as unknown as Record<string, unknown>, shape, 'shape');
}

/** The operator's matrix, (cout·oh·ow) × (cin·h·w) row-major: column j is conv2d(e_j). */
export function denseMatrix(weight: ArrayLike<number>, op: ConvOperator): { rows: number; cols: number; data: Float64Array } {
  const cols = op.inChannels * op.inputHeight * op.inputWidth;
  const rows = op.outChannels * op.outputHeight * op.outputWidth;
  const data = new Float64Array(rows * cols);
  const e = new Float64Array(cols);
  const y = new Float64Array(rows);
  for (let j = 0; j < cols; j++) {
    e.fill(0);
    e[j] = 1;
    convForward(weight, op, e, y);
    for (let i = 0; i < rows; i++) data[i * cols + j] = y[i];
  }
  return { rows, cols, data };
}

/** σ of the operator, to float64 accuracy, from its dense matrix. */
export function denseSigma(weight: ArrayLike<number>, op: ConvOperator): number {
  const m = denseMatrix(weight, op);
  return exactSpectralNorm(m.data, [m.rows, m.cols]);
}

/**
 * Sedghi et al.'s formula for a stride-1 circular convolution with outputs on the whole grid: the largest σ over the
 * frequencies f of A_f = Σ_(a,b) K[:, :, a, b]·e^(2πi(f1·(a − p)/h + f2·(b − p)/w)), each block's σ taken as that of
 * its real 2m × 2n embedding [[Re, −Im], [Im, Re]] (the same singular values, each twice).
 */
export function fftFormulaSigma(weight: ArrayLike<number>, op: ConvOperator): number {
  const { outChannels: m, inChannels: n, kernelHeight: kh, kernelWidth: kw, inputHeight: h, inputWidth: w } = op;
  const at = kernelIndexer(op);
  let best = 0;
  for (let f1 = 0; f1 < h; f1++) {
    for (let f2 = 0; f2 < w; f2++) {
      const embedded = new Float64Array(4 * m * n);
      for (let o = 0; o < m; o++) {
        for (let c = 0; c < n; c++) {
          let re = 0;
          let im = 0;
          for (let a = 0; a < kh; a++) {
            for (let b = 0; b < kw; b++) {
              const angle = 2 * Math.PI * ((f1 * (a - op.paddingHeight)) / h + (f2 * (b - op.paddingWidth)) / w);
              const k = weight[at(o, c, a, b)];
              re += k * Math.cos(angle);
              im += k * Math.sin(angle);
            }
          }
          embedded[o * 2 * n + c] = re;
          embedded[o * 2 * n + n + c] = -im;
          embedded[(m + o) * 2 * n + c] = im;
          embedded[(m + o) * 2 * n + n + c] = re;
        }
      }
      best = Math.max(best, exactSpectralNorm(embedded, [2 * m, 2 * n]));
    }
  }
  return best;
}

/** A random convolution small enough for its dense matrix: any stride, padding, mode and layout. */
export function randomConv(): { shape: number[]; options: ConvOptions; op: ConvOperator } {
  for (;;) {
    const kh = randomInt(1, 5);
    const kw = random() < 0.7 ? kh : randomInt(1, 5);
    const cout = randomInt(1, 5);
    const cin = randomInt(1, 5);
    const layout = random() < 0.5 ? ('oihw' as const) : ('hwio' as const);
    const options: ConvOptions = {
      inputSize: [randomInt(1, 9), randomInt(1, 9)],
      stride: [randomInt(1, 3), randomInt(1, 3)],
      padding: [randomInt(0, kh - 1), randomInt(0, kw - 1)],
      paddingMode: random() < 0.5 ? 'zeros' : 'circular',
      layout,
    };
    const shape = layout === 'oihw' ? [cout, cin, kh, kw] : [kh, kw, cin, cout];
    try {
      const op = operatorOf(shape, options);
      if (op.inChannels * op.inputHeight * op.inputWidth <= 300) return { shape, options, op };
    } catch {
      // an input smaller than the kernel, or circular padding wider than the input: draw again
    }
  }
}

export function gaussianKernel(length: number, dtype: 'float32' | 'float64' = 'float64'): Float32Array | Float64Array {
  const a = dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = gaussian();
  return a;
}

function normalized(x: Float64Array, eps: number): Float64Array {
  let s = 0;
  for (const v of x) s += v * v;
  const den = Math.max(Math.sqrt(s), eps);
  return x.map((v) => v / den);
}

/**
 * PyTorch's power iteration with the convolution as the operator ("real SN"), in float64: u ← normalize(C v), then
 * v ← normalize(Cᵀ u) (legacy: the other order), σ = u·(C v). With dtype 'float32', u and v are stored rounded.
 */
export function referenceConvStep(
  weight: ArrayLike<number>,
  op: ConvOperator,
  u0: ArrayLike<number>,
  v0: ArrayLike<number>,
  iterations: number,
  eps: number,
  legacy: boolean,
  dtype: 'float32' | 'float64',
): { u: Float64Array; v: Float64Array; sigma: number } {
  const store = (x: Float64Array) => (dtype === 'float32' ? x.map(Math.fround) : x);
  const forward = (x: Float64Array) => {
    const y = new Float64Array(op.outChannels * op.outputHeight * op.outputWidth);
    convForward(weight, op, x, y);
    return y;
  };
  const transpose = (y: Float64Array) => {
    const t = new Float64Array(op.inChannels * op.inputHeight * op.inputWidth);
    convTranspose(weight, op, y, t);
    return t;
  };
  let u: Float64Array = Float64Array.from(u0);
  let v: Float64Array = Float64Array.from(v0);
  for (let k = 0; k < iterations; k++) {
    if (legacy) {
      v = store(normalized(transpose(u), eps));
      u = store(normalized(forward(v), eps));
    } else {
      u = store(normalized(forward(v), eps));
      v = store(normalized(transpose(u), eps));
    }
  }
  const cv = forward(v);
  let sigma = 0;
  for (let i = 0; i < u.length; i++) sigma += u[i] * cv[i];
  return { u, v, sigma };
}

/**
 * For the SIMD variant checks (test/children/simd-variant-check.ts): the native operator's steps and the FFT method on
 * a few fixed geometries, against the float64 references; throws on a mismatch.
 */
export function checkConvKernels(): void {
  const cases: [number[], ConvOptions][] = [
    [[19, 5, 3, 3], { inputSize: [9, 11], padding: 1 }],
    [[4, 4, 21, 8], { inputSize: [10, 8], padding: 1, stride: 2, paddingMode: 'circular', layout: 'hwio' }],
    [[3, 9, 5, 2], { inputSize: [7, 6], padding: [2, 1], stride: [1, 3] }],
  ];
  for (const [shape, options] of cases) {
    const op = operatorOf(shape, options);
    const weight = gaussianKernel(
      shape.reduce((a, b) => a * b, 1),
      'float64',
    );
    const sn = new SpectralNormalizer(shape, {
      operator: { kind: 'conv2d', ...options },
      dtype: 'float64',
      backend: 'cpu',
      seed: 1,
      iterations: 2,
    });
    const ref = referenceConvStep(weight, op, sn.u, sn.v, 2, 1e-12, false, 'float64');
    const sigma = sn.step(weight.slice());
    if (Math.abs(sigma - ref.sigma) > 1e-10 * ref.sigma) throw new Error(`[${shape}]: step σ ${sigma}, reference ${ref.sigma}`);
    const exact = denseSigma(weight, op);
    const r = convSpectralNorm(weight, shape, { ...options, backend: 'cpu' });
    if (!(r.lower <= exact * (1 + 1e-12) && r.upper >= exact * (1 - 1e-12))) {
      throw new Error(`[${shape}]: bounds [${r.lower}, ${r.upper}] miss σ ${exact}`);
    }
  }
}
