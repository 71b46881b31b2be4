// Bad input to the convolution-operator API (issue 14): convSpectralNorm's options, the `operator` option of
// SpectralNormalizer and of SpectralNormBatch layers, spectralNorm's `certify`. Each gets a TypeError or RangeError
// whose message starts with the option's name, and nothing is modified (the weight and a normalizer's u and v, byte
// for byte).
import * as assert from 'node:assert/strict';

import { SpectralNormBatch, SpectralNormalizer, convSpectralNorm, spectralNorm } from '../../lib';
import { assertSameBytes, backendsUnderTest, randomArray } from '../support/helpers';

interface Context {
  backend: 'cpu' | 'js';
  weight: Float32Array; // [4, 3, 3, 3]
  sn: SpectralNormalizer; // with an operator on [6, 5]
}

interface BadCase {
  name: string;
  error: typeof TypeError | typeof RangeError;
  message: RegExp;
  call: (c: Context) => unknown;
}

const SHAPE = [4, 3, 3, 3];
const CONV = { inputSize: [6, 5] };
const OPERATOR = { kind: 'conv2d' as const, ...CONV, padding: 1 };

const cases: BadCase[] = [
  // convSpectralNorm(weight, shape, options)
  {
    name: 'options missing',
    error: TypeError,
    message: /^options is required/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, undefined as never),
  },
  {
    name: 'inputSize missing',
    error: TypeError,
    message: /^options\.inputSize is required/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { backend: c.backend } as never),
  },
  {
    name: 'inputSize a string',
    error: TypeError,
    message: /^options\.inputSize must be an array \[height, width\]/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { inputSize: '6x5' as never, backend: c.backend }),
  },
  {
    name: 'inputSize of one number',
    error: TypeError,
    message: /^options\.inputSize must be an array/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { inputSize: [6], backend: c.backend }),
  },
  {
    name: 'inputSize with 0',
    error: RangeError,
    message: /^options\.inputSize must hold integers >= 1, got \[0,5\]/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { inputSize: [0, 5], backend: c.backend }),
  },
  {
    name: 'inputSize smaller than the kernel after padding',
    error: RangeError,
    message: /^options\.inputSize \[2, 5\] is smaller than the kernel \[3, 3\] after padding \[0, 0\]/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { inputSize: [2, 5], backend: c.backend }),
  },
  {
    name: 'paddingMode unknown',
    error: RangeError,
    message: /^options\.paddingMode must be 'zeros' or 'circular', got string reflect/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, paddingMode: 'reflect' as never, backend: c.backend }),
  },
  {
    name: 'paddingMode not a string',
    error: TypeError,
    message: /^options\.paddingMode must be 'zeros' or 'circular'/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, paddingMode: 1 as never, backend: c.backend }),
  },
  {
    name: 'stride 0',
    error: RangeError,
    message: /^options\.stride must hold integers >= 1, got 0/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, stride: 0, backend: c.backend }),
  },
  {
    name: 'stride a fraction',
    error: RangeError,
    message: /^options\.stride must hold integers >= 1/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, stride: [1, 1.5], backend: c.backend }),
  },
  {
    name: 'stride of three numbers',
    error: TypeError,
    message: /^options\.stride must be a number or an array/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, stride: [1, 1, 1], backend: c.backend }),
  },
  {
    name: 'padding as large as the kernel',
    error: RangeError,
    message: /^options\.padding \[3, 3\] must be less than the kernel's size \[3, 3\]/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, padding: 3, backend: c.backend }),
  },
  {
    name: 'padding negative',
    error: RangeError,
    message: /^options\.padding must hold integers >= 0/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, padding: [-1, 0], backend: c.backend }),
  },
  {
    name: 'circular padding wider than the input',
    error: RangeError,
    message: /^options\.padding \[2, 2\] wraps around the input \[1, 5\] more than once/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { inputSize: [1, 5], padding: 2, paddingMode: 'circular', backend: c.backend }),
  },
  {
    name: 'layout unknown',
    error: RangeError,
    message: /^options\.layout must be 'oihw' or 'hwio', got string nchw/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, layout: 'nchw' as never, backend: c.backend }),
  },
  {
    name: "layout and the shape's rank disagree",
    error: RangeError,
    message: /^options\.layout 'oihw' needs a 4-D shape, got 2-D \[4, 27\]/,
    call: (c) => convSpectralNorm(c.weight, [4, 27], { ...CONV, backend: c.backend }),
  },
  {
    name: 'hwio and a 3-D shape',
    error: RangeError,
    message: /^options\.layout 'hwio' needs a 4-D shape, got 3-D/,
    call: (c) => convSpectralNorm(c.weight, [12, 3, 3], { ...CONV, layout: 'hwio', backend: c.backend }),
  },
  {
    name: 'unknown option',
    error: TypeError,
    message: /^options\.dim is not a known option/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, dim: 1, backend: c.backend } as never),
  },
  {
    name: 'tolerance negative',
    error: RangeError,
    message: /^options\.tolerance must be a finite number >= 0/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, tolerance: -1, backend: c.backend }),
  },
  {
    name: 'maxIterations 0',
    error: RangeError,
    message: /^options\.maxIterations must be an integer from 1/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, maxIterations: 0, backend: c.backend }),
  },
  {
    name: 'threads 0',
    error: RangeError,
    message: /^options\.threads must be an integer from 1/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, threads: 0, backend: c.backend }),
  },
  {
    name: "backend 'cuda'",
    error: RangeError,
    message: /^options\.backend 'cuda' does not run convolution operators yet/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, backend: 'cuda' }),
  },
  {
    name: 'backend unknown',
    error: RangeError,
    message: /^options\.backend must be 'auto', 'cuda', 'cpu' or 'js', got string gpu/,
    call: (c) => convSpectralNorm(c.weight, SHAPE, { ...CONV, backend: 'gpu' as never }),
  },
  {
    name: 'weight of the wrong length',
    error: RangeError,
    message: /^weight has 108 elements but shape \[4, 3, 3, 2\] needs 72/,
    call: (c) => convSpectralNorm(c.weight, [4, 3, 3, 2], { ...CONV, backend: c.backend }),
  },
  {
    name: 'weight not a typed array',
    error: TypeError,
    message: /^weight must be a Float32Array or Float64Array/,
    call: (c) => convSpectralNorm(Array.from(c.weight) as never, SHAPE, { ...CONV, backend: c.backend }),
  },
  {
    name: 'weight with NaN',
    error: RangeError,
    message: /^weight contains NaN or Infinity \(at index 7\)/,
    call: (c) => convSpectralNorm(withNaN(c.weight, 7), SHAPE, { ...CONV, backend: c.backend }),
  },
  {
    name: 'shape malformed',
    error: RangeError,
    message: /^shape\[0\] must be a positive safe integer/,
    call: (c) => convSpectralNorm(c.weight, [0, 3, 3, 3], { ...CONV, backend: c.backend }),
  },

  // The `operator` option of SpectralNormalizer and of batch layers
  {
    name: 'operator not an object',
    error: TypeError,
    message: /^options\.operator must be an object, got string conv2d/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: 'conv2d' as never, backend: c.backend }),
  },
  {
    name: 'operator without kind',
    error: RangeError,
    message: /^options\.operator\.kind must be 'conv2d', got undefined/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: { ...CONV } as never, backend: c.backend }),
  },
  {
    name: 'operator with an unknown key',
    error: TypeError,
    message: /^options\.operator\.dilation is not a known option/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: { ...OPERATOR, dilation: 2 } as never, backend: c.backend }),
  },
  {
    name: 'operator without inputSize',
    error: TypeError,
    message: /^options\.operator\.inputSize is required/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: { kind: 'conv2d' } as never, backend: c.backend }),
  },
  {
    name: 'operator with stride 0',
    error: RangeError,
    message: /^options\.operator\.stride must hold integers >= 1/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: { ...OPERATOR, stride: 0 }, backend: c.backend }),
  },
  {
    name: 'operator and dim 1',
    error: RangeError,
    message: /^options\.dim must be 0 \(or absent\) with an operator, got 1/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: OPERATOR, dim: 1, backend: c.backend }),
  },
  {
    name: "operator and backend 'cuda'",
    error: RangeError,
    message: /^options\.backend 'cuda' does not run convolution operators yet/,
    call: () => new SpectralNormalizer(SHAPE, { operator: OPERATOR, backend: 'cuda' }),
  },
  {
    name: 'operator and a CUDA device',
    error: RangeError,
    message: /^options\.device applies only to the cuda backend, which does not run convolution operators yet/,
    call: () => new SpectralNormalizer(SHAPE, { operator: OPERATOR, device: 0 }),
  },
  {
    name: 'operator and a matrix-sized u',
    error: RangeError,
    message: /^options\.u must have 120 elements, got 4/,
    call: (c) => new SpectralNormalizer(SHAPE, { operator: OPERATOR, u: [1, 2, 3, 4], backend: c.backend }),
  },
  {
    name: 'batch layer operator with padding too large',
    error: RangeError,
    message: /^layers\[1\]\.operator\.padding \[3, 3\] must be less than/,
    call: (c) =>
      new SpectralNormBatch([{ shape: [2, 2] }, { shape: SHAPE, operator: { ...OPERATOR, padding: 3 } }], { backend: c.backend }),
  },
  {
    name: 'batch layer operator on a 2-D weight',
    error: RangeError,
    message: /^layers\[0\]\.operator\.layout 'oihw' needs a 4-D layers\[0\]\.shape/,
    call: (c) => new SpectralNormBatch([{ shape: [4, 27], operator: OPERATOR }], { backend: c.backend }),
  },
  {
    name: 'fromState with a broken operator',
    error: RangeError,
    message: /^state\.operator\.paddingMode must be 'zeros' or 'circular'/,
    call: (c) =>
      SpectralNormalizer.fromState({ ...c.sn.state(), operator: { ...OPERATOR, paddingMode: 'mirror' as never } }, { backend: c.backend }),
  },
  {
    name: 'step with NaN on an operator layer',
    error: RangeError,
    message: /^weight contains NaN or Infinity/,
    call: (c) => c.sn.step(withNaN(c.weight, 3)),
  },

  // spectralNorm's certify
  {
    name: 'certify not a boolean',
    error: TypeError,
    message: /^options\.certify must be a boolean, got string yes/,
    call: (c) => spectralNorm(c.weight, SHAPE, { certify: 'yes' as never, backend: c.backend }),
  },
];

/** The context's weight with NaN written at `index`: NaN in the same array, restored by the test's snapshot check. */
function withNaN(weight: Float32Array, index: number): Float32Array {
  const copy = weight.slice();
  copy[index] = NaN;
  return copy;
}

describe('bad input to convolution operators: a clear TypeError or RangeError naming the option, and nothing modified', () => {
  const backends = backendsUnderTest().filter((b) => b !== 'cuda') as ('cpu' | 'js')[];
  for (const backend of backends) {
    describe(`backend ${backend}`, () => {
      for (const bad of cases) {
        it(bad.name, () => {
          const weight = randomArray('float32', 108) as Float32Array;
          const c: Context = { backend, weight, sn: new SpectralNormalizer(SHAPE, { operator: OPERATOR, backend, seed: 1 }) };
          const before = { weight: weight.slice(), u: c.sn.u, v: c.sn.v };
          assert.throws(
            () => bad.call(c),
            (error: unknown) => {
              assert.ok(error instanceof bad.error, `${bad.name}: expected a ${bad.error.name}, got ${String(error)}`);
              assert.match((error as Error).message, bad.message);
              return true;
            },
          );
          assertSameBytes(c.weight, before.weight, 'weight');
          assertSameBytes(c.sn.u, before.u, 'u');
          assertSameBytes(c.sn.v, before.v, 'v');
        });
      }
    });
  }
});
