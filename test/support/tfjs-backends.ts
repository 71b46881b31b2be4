// The tfjs backends the TF.js tests and benchmark run on: cpu, and wasm where it loads. The wasm backend's 4.x
// releases have no Conv2DBackpropFilter kernel, so no conv2d or conv2dTranspose layer can train on it
// (tensorflow/tfjs#8474, open). It has Conv3DBackpropFilterV2: a 2-D convolution is a 3-D one of depth 1, so that
// kernel gives the filter gradient, and this module registers it under the missing name, for this process only.
// checkWasmFilterGradient() compares it with the cpu backend's.
import * as tf from '@tensorflow/tfjs';

interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}

interface Conv2DBackpropFilterAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat: string;
  dimRoundingMode?: string;
  filterShape: [number, number, number, number];
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
  registerFilterGradient();
  return null;
}

function registerFilterGradient(): void {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) return;
  const conv3d = tf.getKernel('Conv3DBackpropFilterV2', 'wasm');
  if (conv3d === undefined) throw new Error('the wasm backend has neither Conv2DBackpropFilter nor Conv3DBackpropFilterV2');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as unknown as { x: TensorInfo; dy: TensorInfo };
      const { strides: stride, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
      if (dataFormat !== 'NHWC' || (pad !== 'same' && pad !== 'valid') || dimRoundingMode !== undefined) {
        throw new Error(
          `Conv2DBackpropFilter on wasm (test support): only NHWC with 'same' or 'valid' padding, got ${dataFormat} ${String(pad)}`,
        );
      }
      const strides = typeof stride === 'number' ? [stride, stride] : stride;
      // The same buffers seen with a depth of 1: the wasm kernels read data by dataId and shape.
      const depth1 = (t: TensorInfo) => ({ dataId: t.dataId, shape: [t.shape[0], 1, ...t.shape.slice(1)], dtype: t.dtype });
      const dw = conv3d.kernelFunc({
        inputs: { x: depth1(x), dy: depth1(dy) } as unknown as tf.NamedTensorInfoMap,
        backend,
        attrs: { strides: [1, ...strides], pad, filterShape: [1, ...filterShape] },
      }) as TensorInfo;
      return { dataId: dw.dataId, shape: filterShape, dtype: dw.dtype } as unknown as tf.TensorInfo;
    },
  });
}

/** The largest difference between the registered kernel's filter gradient and the cpu backend's, on one case. */
export async function checkWasmFilterGradient(): Promise<number> {
  const previous = tf.getBackend();
  const x = Array.from({ length: 2 * 9 * 9 * 5 }, (_, i) => Math.sin(i));
  const dy = Array.from({ length: 2 * 5 * 5 * 7 }, (_, i) => Math.cos(i));
  const filter = Array.from({ length: 4 * 4 * 5 * 7 }, (_, i) => Math.sin(3 * i));
  const gradient = () =>
    tf.tidy(() => {
      const f = (w: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(tf.tensor4d(x, [2, 9, 9, 5]), w as tf.Tensor4D, 2, 'same'), tf.tensor4d(dy, [2, 5, 5, 7])));
      return Array.from(
        tf
          .grad(f)(tf.tensor4d(filter, [4, 4, 5, 7]))
          .dataSync(),
      );
    });
  await tf.setBackend('cpu');
  const expected = gradient();
  await tf.setBackend('wasm');
  const actual = gradient();
  await tf.setBackend(previous);
  return Math.max(...actual.map((a, i) => Math.abs(a - expected[i]) / (1 + Math.abs(expected[i]))));
}

export type TfBackend = 'cpu' | 'wasm';

/**
 * describe(title) once per tfjs backend, with that backend set for its tests; on wasm, skipped with the reason when
 * the backend cannot load here.
 */
export function describeOnTfBackends(title: string, body: (backend: TfBackend) => void): void {
  for (const backend of ['cpu', 'wasm'] as const) {
    describe(`${title} (tfjs ${backend} backend)`, function () {
      before(async function () {
        const unavailable = backend === 'wasm' ? await wasmBackend() : null;
        if (unavailable !== null) {
          console.log(`      (skipped: ${unavailable})`);
          this.skip();
        }
        await tf.setBackend(backend);
      });
      after(async () => {
        await tf.setBackend('cpu');
      });
      body(backend);
    });
  }
}
