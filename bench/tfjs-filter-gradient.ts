// A Conv2DBackpropFilter kernel (the filter gradient of conv2d, and so of every conv2d layer's training step) for
// tfjs backends that lack one or whose own is too slow to benchmark with, shared by bench:tfjs and the TF.js tests.
// Not part of the package.
// - wasm: tfjs 4.x has no Conv2DBackpropFilter there (tensorflow/tfjs#8474, open), so no conv2d or conv2dTranspose
//   layer can train on it.
// - cpu: tfjs's own kernel reads every element through TensorBuffer.get(); one 3×3 layer of the SNGAN CIFAR-10
//   discriminator at batch 16 took 50-75 s on the development machine (forward pass: under 1 s), which is why a single
//   training step of bench:tfjs took minutes there.
// The stand-in is im2col + one matrix product: patches[(n, oh, ow), (kh, kw, c)] = x[n, oh·sh − top + kh, ow·sw −
// left + kw, c] (0 in the padding), built on the host, then dW = patchesᵀ · dy with the backend's own BatchMatMul
// (XNNPACK on wasm), read as [kh, kw, c, f], the filter's layout. On the discriminator's shapes it takes 0.4-2 s per
// layer on cpu and under 0.1 s on wasm, where tfjs 4.x's Conv3DBackpropFilterV2 seen at depth 1 (the tests'
// earlier stand-in) took 0.3-1.6 s. test/tfjs/filter-gradient.test.ts compares it with
// the cpu backend's own kernel.
import * as tf from '@tensorflow/tfjs';

interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface HostBackend {
  readSync(dataId: object): ArrayLike<number>;
  write(values: Float32Array, shape: number[], dtype: string): object;
  disposeData(dataId: object): boolean;
}

interface Conv2DBackpropFilterAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

const KERNEL = 'Conv2DBackpropFilter';

/** The filter gradient of conv2d: the Conv2DBackpropFilter kernel's function, for any backend that keeps tensors on the host. */
const filterGradient: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as unknown as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NHWC') throw new Error(`${KERNEL} (bench stand-in): only NHWC, got ${dataFormat}`);
  const host = backend as unknown as HostBackend;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: n, inHeight, inWidth, inChannels: c, outHeight, outWidth, filterHeight, filterWidth, padInfo } = info;
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const input = host.readSync(x.dataId) as Float32Array;
  // patchesᵀ, built transposed: the wasm backend's BatchMatMul multiplies a [K, M] matrix by [M, F] some 40× faster
  // than a [M, K] one with transposeA (tfjs 4.22, on the discriminator's shapes).
  const rows = n * outHeight * outWidth;
  const columns = filterHeight * filterWidth * c;
  const patches = new Float32Array(columns * rows);
  for (let kh = 0, at = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let k = 0; k < c; k++) {
        for (let b = 0; b < n; b++) {
          for (let oh = 0; oh < outHeight; oh++, at += outWidth) {
            const ih = oh * sh - padInfo.top + kh;
            if (ih < 0 || ih >= inHeight) continue;
            const from = (b * inHeight + ih) * inWidth * c + k;
            for (let ow = 0; ow < outWidth; ow++) {
              const iw = ow * sw - padInfo.left + kw;
              if (iw >= 0 && iw < inWidth) patches[at + ow] = input[from + iw * c];
            }
          }
        }
      }
    }
  }
  const a = { dataId: host.write(patches, [1, columns, rows], 'float32'), shape: [1, columns, rows], dtype: 'float32' };
  const matMul = tf.getKernel('BatchMatMul', tf.getBackend());
  if (matMul === undefined) throw new Error(`${KERNEL} (bench stand-in): the ${tf.getBackend()} backend has no BatchMatMul`);
  try {
    // dy's buffer read as a [1, rows, filters] matrix: the backends keep tensors dense and row-major.
    const dyMatrix = { dataId: dy.dataId, shape: [1, rows, dy.shape[3]], dtype: dy.dtype };
    const dw = matMul.kernelFunc({
      inputs: { a, b: dyMatrix } as unknown as tf.NamedTensorInfoMap,
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as TensorInfo;
    return { dataId: dw.dataId, shape: filterShape, dtype: dw.dtype } as unknown as tf.TensorInfo;
  } finally {
    host.disposeData(a.dataId);
  }
};

/**
 * Makes `backend` compute Conv2DBackpropFilter with the stand-in above, for this process: registers it where the
 * backend has no such kernel, replaces the backend's own where `replace`. Returns the function that puts back what was
 * there before.
 */
export function useFilterGradient(backend: string, { replace = false } = {}): () => void {
  const own = tf.getKernel(KERNEL, backend);
  if (own !== undefined && (!replace || own.kernelFunc === filterGradient)) return () => {};
  if (own !== undefined) tf.unregisterKernel(KERNEL, backend);
  tf.registerKernel({ kernelName: KERNEL, backendName: backend, kernelFunc: filterGradient });
  return () => {
    tf.unregisterKernel(KERNEL, backend);
    if (own !== undefined) tf.registerKernel(own);
  };
}

/** Loads the wasm backend and makes it able to train conv2d layers; the reason when it cannot be used here. */
export async function wasmBackend(): Promise<string | null> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
    await tf.ready(); // a backend (the default) is set, to go back to
    const previous = tf.getBackend();
    if (!(await tf.setBackend('wasm'))) return "tf.setBackend('wasm') failed";
    await tf.setBackend(previous);
  } catch (error) {
    return `the wasm backend did not load (${(error as Error).message.split('\n')[0]})`;
  }
  useFilterGradient('wasm');
  return null;
}
