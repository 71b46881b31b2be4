// Every wrong argument: the error class, a message that names the argument, and nothing modified (weights, out, u
// and v byte for byte). Table-driven, on every backend, for the sync calls and their async twins.
import * as assert from 'node:assert/strict';

import {
  type BackendName,
  SpectralNormBatch,
  SpectralNormalizer,
  backendInfo,
  exactSpectralNorm,
  spectralNorm,
  spectralNormAsync,
  spectralNormalize,
  spectralNormalizeAsync,
} from '../../lib';
import { assertSameBytes, backendsUnderTest, randomArray } from '../support/helpers';

interface Context {
  backend: BackendName;
  sn: SpectralNormalizer;
  batch: SpectralNormBatch;
  weight: Float32Array; // 6×10, for sn
  out: Float32Array;
  weights: Float32Array[]; // [4×5, 3×2×2] for batch
  outs: Float32Array[];
}

type Call = (c: Context) => unknown;

interface BadCase {
  name: string;
  error: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor;
  message: RegExp;
  call: Call;
}

/** An ArrayBuffer-backed Float32Array whose buffer has been transferred away. */
function detached(length: number): Float32Array {
  const a = new Float32Array(length);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

const SHAPE = [6, 10];
const LAYERS = [{ shape: [4, 5] }, { shape: [3, 2, 2], dim: 1 }];

const cases: BadCase[] = [
  // new SpectralNormalizer(shape, options)
  {
    name: 'shape not an array',
    error: TypeError,
    message: /^shape must be a non-empty array/,
    call: () => new SpectralNormalizer('6x10' as never),
  },
  { name: 'shape empty', error: TypeError, message: /^shape must be a non-empty array/, call: () => new SpectralNormalizer([]) },
  {
    name: 'shape with 0',
    error: RangeError,
    message: /^shape\[1\] must be a positive safe integer, got 0/,
    call: () => new SpectralNormalizer([6, 0]),
  },
  {
    name: 'shape with a fraction',
    error: RangeError,
    message: /^shape\[0\] must be a positive safe integer, got 1.5/,
    call: () => new SpectralNormalizer([1.5, 2]),
  },
  { name: 'shape with a negative', error: RangeError, message: /^shape\[1\]/, call: () => new SpectralNormalizer([6, -10]) },
  {
    name: 'shape with a string',
    error: TypeError,
    message: /^shape\[0\] must be a number/,
    call: () => new SpectralNormalizer(['6', 10] as never),
  },
  {
    name: 'shape overflowing',
    error: RangeError,
    message: /^shape \[.*\] has too many elements/,
    call: () => new SpectralNormalizer([2 ** 30, 2 ** 30]),
  },
  {
    name: 'dim too large',
    error: RangeError,
    message: /^options\.dim must be an integer in \[-2, 1\] for a 2-D weight, got 2/,
    call: (c) => new SpectralNormalizer(SHAPE, { dim: 2, backend: c.backend }),
  },
  {
    name: 'dim too small',
    error: RangeError,
    message: /^options\.dim .* got -3/,
    call: (c) => new SpectralNormalizer(SHAPE, { dim: -3, backend: c.backend }),
  },
  {
    name: 'dim a fraction',
    error: RangeError,
    message: /^options\.dim/,
    call: (c) => new SpectralNormalizer(SHAPE, { dim: 0.5, backend: c.backend }),
  },
  {
    name: 'dim a string',
    error: TypeError,
    message: /^options\.dim must be an integer/,
    call: (c) => new SpectralNormalizer(SHAPE, { dim: '0' as never, backend: c.backend }),
  },
  {
    name: 'iterations 0',
    error: RangeError,
    message: /^options\.iterations must be an integer from 1/,
    call: (c) => new SpectralNormalizer(SHAPE, { iterations: 0, backend: c.backend }),
  },
  {
    name: 'iterations a fraction',
    error: RangeError,
    message: /^options\.iterations/,
    call: (c) => new SpectralNormalizer(SHAPE, { iterations: 1.5, backend: c.backend }),
  },
  {
    name: 'iterations NaN',
    error: RangeError,
    message: /^options\.iterations/,
    call: (c) => new SpectralNormalizer(SHAPE, { iterations: NaN, backend: c.backend }),
  },
  {
    name: 'iterations a string',
    error: TypeError,
    message: /^options\.iterations must be an integer/,
    call: (c) => new SpectralNormalizer(SHAPE, { iterations: '1' as never, backend: c.backend }),
  },
  {
    name: 'eps negative',
    error: RangeError,
    message: /^options\.eps must be a finite number >= 0, got -1/,
    call: (c) => new SpectralNormalizer(SHAPE, { eps: -1, backend: c.backend }),
  },
  {
    name: 'eps NaN',
    error: RangeError,
    message: /^options\.eps .* got NaN/,
    call: (c) => new SpectralNormalizer(SHAPE, { eps: NaN, backend: c.backend }),
  },
  {
    name: 'eps Infinity',
    error: RangeError,
    message: /^options\.eps/,
    call: (c) => new SpectralNormalizer(SHAPE, { eps: Infinity, backend: c.backend }),
  },
  {
    name: 'precision unknown',
    error: RangeError,
    message: /^options\.precision must be 'mixed' or 'float64', got string float32/,
    call: (c) => new SpectralNormalizer(SHAPE, { precision: 'float32' as never, backend: c.backend }),
  },
  {
    name: 'dtype unknown',
    error: TypeError,
    message: /^options\.dtype must be 'float32' or 'float64'/,
    call: (c) => new SpectralNormalizer(SHAPE, { dtype: 'float16' as never, backend: c.backend }),
  },
  {
    name: 'backend unknown',
    error: RangeError,
    message: /^options\.backend must be 'auto', 'cuda', 'cpu' or 'js', got string gpu/,
    call: () => new SpectralNormalizer(SHAPE, { backend: 'gpu' as never }),
  },
  // Only where no GPU is usable (test/cuda/cuda-backend.test.ts covers the rest).
  ...(backendInfo().cuda.available
    ? []
    : [
        {
          name: "backend 'cuda' unavailable",
          error: RangeError,
          message: /^options\.backend 'cuda' is unavailable: \S/,
          call: () => new SpectralNormalizer(SHAPE, { backend: 'cuda' }),
        },
      ]),
  {
    name: 'threads 0',
    error: RangeError,
    message: /^options\.threads must be an integer from 1/,
    call: (c) => new SpectralNormalizer(SHAPE, { threads: 0, backend: c.backend }),
  },
  {
    name: 'seed a fraction',
    error: RangeError,
    message: /^options\.seed must be a safe integer/,
    call: (c) => new SpectralNormalizer(SHAPE, { seed: 0.5, backend: c.backend }),
  },
  {
    name: 'u of the wrong length',
    error: RangeError,
    message: /^options\.u must have 6 elements, got 5/,
    call: (c) => new SpectralNormalizer(SHAPE, { u: new Float32Array(5).fill(1), backend: c.backend }),
  },
  {
    name: 'u non-finite',
    error: RangeError,
    message: /^options\.u\[2\] must be finite, got NaN/,
    call: (c) => new SpectralNormalizer(SHAPE, { u: [1, 1, NaN, 1, 1, 1], backend: c.backend }),
  },
  {
    name: 'u all zeros',
    error: RangeError,
    message: /^options\.u must not be all zeros/,
    call: (c) => new SpectralNormalizer(SHAPE, { u: new Float64Array(6), backend: c.backend }),
  },
  {
    name: 'v of the wrong length',
    error: RangeError,
    message: /^options\.v must have 10 elements, got 6/,
    call: (c) => new SpectralNormalizer(SHAPE, { v: [1, 2, 3, 4, 5, 6], backend: c.backend }),
  },
  {
    name: 'v with Infinity',
    error: RangeError,
    message: /^options\.v\[0\] must be finite/,
    call: (c) => new SpectralNormalizer(SHAPE, { v: [Infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0], backend: c.backend }),
  },
  {
    name: 'v not an array',
    error: TypeError,
    message: /^options\.v must be an array/,
    call: (c) => new SpectralNormalizer(SHAPE, { v: 'x' as never, backend: c.backend }),
  },
  {
    name: 'misspelt option',
    error: TypeError,
    message: /^options\.iteration is not a known option/,
    call: (c) => new SpectralNormalizer(SHAPE, { iteration: 2, backend: c.backend } as never),
  },
  {
    name: 'options not an object',
    error: TypeError,
    message: /^options must be an object/,
    call: () => new SpectralNormalizer(SHAPE, 5 as never),
  },

  // sn.step / warmup
  {
    name: 'step: weight of the wrong dtype',
    error: TypeError,
    message: /^weight must be a Float32Array \(dtype 'float32'\), got a Float64Array/,
    call: (c) => c.sn.step(new Float64Array(60)),
  },
  {
    name: 'step: weight a plain array',
    error: TypeError,
    message: /^weight must be a Float32Array or Float64Array, got an Array/,
    call: (c) => c.sn.step(Array.from(c.weight) as never),
  },
  {
    name: 'step: weight of the wrong length',
    error: RangeError,
    message: /^weight has 59 elements but shape \[6, 10\] needs 60/,
    call: (c) => c.sn.step(c.weight.subarray(1)),
  },
  {
    name: 'step: weight detached',
    error: TypeError,
    message: /^weight is backed by a detached ArrayBuffer/,
    call: (c) => c.sn.step(detached(60)),
  },
  {
    name: 'step: out of the wrong dtype',
    error: TypeError,
    message: /^options\.out must be a Float32Array/,
    call: (c) => c.sn.step(c.weight, { out: new Float64Array(60) as never }),
  },
  {
    name: 'step: out of the wrong length',
    error: RangeError,
    message: /^options\.out has 61 elements but the weight has 60/,
    call: (c) => c.sn.step(c.weight, { out: new Float32Array(61) }),
  },
  {
    name: 'step: out detached',
    error: TypeError,
    message: /^options\.out is backed by a detached ArrayBuffer/,
    call: (c) => c.sn.step(c.weight, { out: detached(60) }),
  },
  {
    name: 'step: out partially overlapping the weight',
    error: RangeError,
    message: /^options\.out overlaps weight|^weight overlaps options\.out/,
    call: (c) => {
      const shared = new Float32Array(61);
      shared.set(c.weight);
      return c.sn.step(shared.subarray(0, 60), { out: shared.subarray(1, 61) });
    },
  },
  {
    name: 'step: update not a boolean',
    error: TypeError,
    message: /^options\.update must be a boolean/,
    call: (c) => c.sn.step(c.weight, { update: 'yes' as never }),
  },
  {
    name: 'step: misspelt option',
    error: TypeError,
    message: /^options\.output is not a known option/,
    call: (c) => c.sn.step(c.weight, { output: c.out } as never),
  },
  {
    name: 'warmup: iterations 0',
    error: RangeError,
    message: /^iterations must be an integer from 1/,
    call: (c) => c.sn.warmup(c.weight, 0),
  },
  { name: 'warmup: iterations negative', error: RangeError, message: /^iterations/, call: (c) => c.sn.warmup(c.weight, -1) },
  {
    name: 'warmup: iterations missing',
    error: TypeError,
    message: /^iterations must be an integer/,
    call: (c) => (c.sn.warmup as (w: Float32Array) => number)(c.weight),
  },
  {
    name: 'warmup: weight of the wrong length',
    error: RangeError,
    message: /^weight has 10 elements/,
    call: (c) => c.sn.warmup(new Float32Array(10), 3),
  },

  // SpectralNormBatch
  {
    name: 'batch: layers not an array',
    error: TypeError,
    message: /^layers must be a non-empty array/,
    call: () => new SpectralNormBatch({} as never),
  },
  { name: 'batch: layers empty', error: TypeError, message: /^layers must be a non-empty array/, call: () => new SpectralNormBatch([]) },
  {
    name: 'batch: a layer not an object',
    error: TypeError,
    message: /^layers\[1\] must be an object/,
    call: (c) => new SpectralNormBatch([{ shape: [2, 2] }, null as never], { backend: c.backend }),
  },
  {
    name: 'batch: a bad layer shape',
    error: RangeError,
    message: /^layers\[1\]\.shape\[0\] must be a positive safe integer/,
    call: (c) => new SpectralNormBatch([{ shape: [2, 2] }, { shape: [0, 2] }], { backend: c.backend }),
  },
  {
    name: 'batch: a layer dim out of range',
    error: RangeError,
    message: /^layers\[0\]\.dim must be an integer in \[-2, 1\]/,
    call: (c) => new SpectralNormBatch([{ shape: [2, 2], dim: 5 }], { backend: c.backend }),
  },
  {
    name: 'batch: a layer u of the wrong length',
    error: RangeError,
    message: /^layers\[0\]\.u must have 2 elements/,
    call: (c) => new SpectralNormBatch([{ shape: [2, 3], u: [1] }], { backend: c.backend }),
  },
  {
    name: 'batch: a misspelt layer key',
    error: TypeError,
    message: /^layers\[0\]\.dims is not a known option/,
    call: (c) => new SpectralNormBatch([{ shape: [2, 3], dims: 1 } as never], { backend: c.backend }),
  },
  {
    name: 'batch: precision invalid',
    error: RangeError,
    message: /^options\.precision must be 'mixed' or 'float64'/,
    call: (c) => new SpectralNormBatch(LAYERS, { precision: 64 as never, backend: c.backend }),
  },
  {
    name: 'batch: iterations invalid',
    error: RangeError,
    message: /^options\.iterations/,
    call: (c) => new SpectralNormBatch(LAYERS, { iterations: -2, backend: c.backend }),
  },
  {
    name: 'batch: fewer weights than layers',
    error: RangeError,
    message: /^weights has 1 entries but the batch has 2 layers/,
    call: (c) => c.batch.step([c.weights[0]]),
  },
  {
    name: 'batch: more weights than layers',
    error: RangeError,
    message: /^weights has 3 entries but the batch has 2 layers/,
    call: (c) => c.batch.step([...c.weights, c.weights[0]]),
  },
  {
    name: 'batch: weights not an array',
    error: TypeError,
    message: /^weights must be an array/,
    call: (c) => c.batch.step(c.weights[0] as never),
  },
  {
    name: 'batch: a weight of the wrong dtype',
    error: TypeError,
    message: /^weights\[1\] must be a Float32Array/,
    call: (c) => c.batch.step([c.weights[0], new Float64Array(12) as never]),
  },
  {
    name: 'batch: a weight of the wrong length',
    error: RangeError,
    message: /^weights\[1\] has 11 elements but shape \[3, 2, 2\] needs 12/,
    call: (c) => c.batch.step([c.weights[0], new Float32Array(11)]),
  },
  {
    name: 'batch: a detached weight',
    error: TypeError,
    message: /^weights\[0\] is backed by a detached ArrayBuffer/,
    call: (c) => c.batch.step([detached(20), c.weights[1]]),
  },
  {
    name: 'batch: out of the wrong count',
    error: RangeError,
    message: /^options\.out has 1 entries but the batch has 2 layers/,
    call: (c) => c.batch.step(c.weights, { out: [c.outs[0]] }),
  },
  {
    name: 'batch: an out of the wrong length',
    error: RangeError,
    message: /^options\.out\[1\] has 20 elements but the weight has 12/,
    call: (c) => c.batch.step(c.weights, { out: [c.outs[0], c.outs[0]] }),
  },
  {
    name: "batch: an out that overlaps another layer's weight",
    error: RangeError,
    message: /^options\.out\[1\] overlaps weights\[0\]/,
    call: (c) => c.batch.step(c.weights, { out: [new Float32Array(20), c.weights[0].subarray(0, 12)] }),
  },
  {
    name: 'batch: two layers sharing one weight in place',
    error: RangeError,
    message: /^weights\[1\] overlaps weights\[0\]/,
    call: (c) => {
      const b = new SpectralNormBatch([{ shape: [4, 5] }, { shape: [20] }], { backend: c.backend });
      return b.step([c.weights[0], c.weights[0]]);
    },
  },
  {
    name: 'batch warmup: iterations invalid',
    error: RangeError,
    message: /^iterations must be an integer from 1/,
    call: (c) => c.batch.warmup(c.weights, 0),
  },
  {
    name: 'batch: u(index) out of range',
    error: RangeError,
    message: /^index must be an integer from 0 to 1, got 2/,
    call: (c) => c.batch.u(2),
  },

  // One-shot functions and exactSpectralNorm
  {
    name: 'spectralNorm: precision invalid',
    error: RangeError,
    message: /^options\.precision must be 'mixed' or 'float64', got string half/,
    call: (c) => spectralNorm(c.weight, SHAPE, { precision: 'half' as never, backend: c.backend }),
  },
  {
    name: 'spectralNormalize: precision invalid',
    error: RangeError,
    message: /^options\.precision must be 'mixed' or 'float64'/,
    call: (c) => spectralNormalize(c.weight, SHAPE, { precision: null as never, backend: c.backend }),
  },
  {
    name: 'spectralNorm: tolerance negative',
    error: RangeError,
    message: /^options\.tolerance must be a finite number >= 0/,
    call: (c) => spectralNorm(c.weight, SHAPE, { tolerance: -1, backend: c.backend }),
  },
  {
    name: 'spectralNorm: tolerance NaN',
    error: RangeError,
    message: /^options\.tolerance/,
    call: (c) => spectralNorm(c.weight, SHAPE, { tolerance: NaN, backend: c.backend }),
  },
  {
    name: 'spectralNorm: maxIterations 0',
    error: RangeError,
    message: /^options\.maxIterations must be an integer from 1/,
    call: (c) => spectralNorm(c.weight, SHAPE, { maxIterations: 0, backend: c.backend }),
  },
  {
    name: 'spectralNorm: shape mismatch',
    error: RangeError,
    message: /^weight has 60 elements but shape \[7, 10\] needs 70/,
    call: (c) => spectralNorm(c.weight, [7, 10], { backend: c.backend }),
  },
  {
    name: 'spectralNorm: dim out of range',
    error: RangeError,
    message: /^options\.dim/,
    call: (c) => spectralNorm(c.weight, SHAPE, { dim: 2, backend: c.backend }),
  },
  {
    name: 'spectralNorm: eps negative',
    error: RangeError,
    message: /^options\.eps/,
    call: (c) => spectralNorm(c.weight, SHAPE, { eps: -1e-12, backend: c.backend }),
  },
  {
    name: 'spectralNorm: out is not an option',
    error: TypeError,
    message: /^options\.out is not a known option/,
    call: (c) => spectralNorm(c.weight, SHAPE, { out: c.out, backend: c.backend } as never),
  },
  {
    name: 'spectralNorm: not a typed array',
    error: TypeError,
    message: /^weight must be a Float32Array or Float64Array, got null/,
    call: (c) => spectralNorm(null as never, SHAPE, { backend: c.backend }),
  },
  {
    name: 'spectralNormalize: out of another dtype',
    error: TypeError,
    message: /^options\.out must be a Float32Array/,
    call: (c) => spectralNormalize(c.weight, SHAPE, { out: new Float64Array(60) as never, backend: c.backend }),
  },
  {
    name: 'spectralNormalize: out partially overlapping',
    error: RangeError,
    message: /options\.out overlaps weight|weight overlaps options\.out/,
    call: (c) => spectralNormalize(c.weight.subarray(0, 50), [5, 10], { out: c.weight.subarray(10, 60), backend: c.backend }),
  },
  {
    name: 'exactSpectralNorm: shape mismatch',
    error: RangeError,
    message: /^weight has 60 elements but shape \[6, 11\] needs 66/,
    call: (c) => exactSpectralNorm(c.weight, [6, 11]),
  },
  {
    name: 'exactSpectralNorm: dim out of range',
    error: RangeError,
    message: /^options\.dim/,
    call: (c) => exactSpectralNorm(c.weight, SHAPE, { dim: -3 }),
  },

  // fromState
  {
    name: 'fromState: not a state',
    error: TypeError,
    message: /^state must come from SpectralNormalizer\.state\(\)/,
    call: () => SpectralNormalizer.fromState({ shape: [2, 2] } as never),
  },
  {
    name: 'fromState: u of the wrong length',
    error: RangeError,
    message: /^state\.u must have 6 elements, got 5/,
    call: (c) => SpectralNormalizer.fromState({ ...c.sn.state(), u: [1, 2, 3, 4, 5] }),
  },
  {
    name: 'fromState: unknown backend',
    error: RangeError,
    message: /^options\.backend must be/,
    call: (c) => SpectralNormalizer.fromState(c.sn.state(), { backend: 'tpu' as never }),
  },
  {
    name: 'batch fromState: a layer with a bad dim',
    error: RangeError,
    message: /^state\.layers\[1\]\.dim/,
    call: (c) => {
      const state = c.batch.state();
      state.layers[1].dim = 9;
      return SpectralNormBatch.fromState(state);
    },
  },
  {
    name: "constructor after a failed fromState: errors name its own arguments, not the state's",
    error: RangeError,
    message: /^options\.dim/,
    call: (c) => {
      assert.throws(() => SpectralNormalizer.fromState({ ...c.sn.state(), u: [1] }), /^RangeError: state\.u/);
      return new SpectralNormalizer(SHAPE, { dim: 2 });
    },
  },
  {
    name: "batch constructor after a failed fromState: errors name its own arguments, not the state's",
    error: RangeError,
    message: /^layers\[0\]\.dim/,
    call: (c) => {
      const state = c.batch.state();
      state.layers[1].dim = 9;
      assert.throws(() => SpectralNormBatch.fromState(state), /^RangeError: state\.layers\[1\]\.dim/);
      return new SpectralNormBatch([{ shape: SHAPE, dim: 2 }]);
    },
  },
];

// The async twins of the calls above that have one: same arguments, same error, as a rejection.
const asyncTwins: BadCase[] = [
  {
    name: 'stepAsync: weight of the wrong dtype',
    error: TypeError,
    message: /^weight must be a Float32Array/,
    call: (c) => c.sn.stepAsync(new Float64Array(60) as never),
  },
  {
    name: 'stepAsync: out partially overlapping',
    error: RangeError,
    message: /overlaps/,
    call: (c) => {
      const shared = new Float32Array(61);
      return c.sn.stepAsync(shared.subarray(1, 61), { out: shared.subarray(0, 60) });
    },
  },
  { name: 'warmupAsync: iterations 0', error: RangeError, message: /^iterations/, call: (c) => c.sn.warmupAsync(c.weight, 0) },
  {
    name: 'batch stepAsync: wrong count',
    error: RangeError,
    message: /^weights has 1 entries/,
    call: (c) => c.batch.stepAsync([c.weights[0]]),
  },
  {
    name: 'batch warmupAsync: detached',
    error: TypeError,
    message: /^weights\[1\] is backed by a detached/,
    call: (c) => c.batch.warmupAsync([c.weights[0], detached(12)], 2),
  },
  {
    name: 'spectralNormAsync: shape mismatch',
    error: RangeError,
    message: /^weight has 60 elements/,
    call: (c) => spectralNormAsync(c.weight, [61]),
  },
  {
    name: 'spectralNormalizeAsync: tolerance',
    error: RangeError,
    message: /^options\.tolerance/,
    call: (c) => spectralNormalizeAsync(c.weight, SHAPE, { tolerance: -5 }),
  },
];

function context(backend: BackendName): Context {
  const sn = new SpectralNormalizer(SHAPE, { backend, seed: 3 });
  const batch = new SpectralNormBatch(LAYERS, { backend, seed: 4 });
  return {
    backend,
    sn,
    batch,
    weight: randomArray('float32', 60) as Float32Array,
    out: randomArray('float32', 60) as Float32Array,
    weights: [randomArray('float32', 20) as Float32Array, randomArray('float32', 12) as Float32Array],
    outs: [randomArray('float32', 20) as Float32Array, randomArray('float32', 12) as Float32Array],
  };
}

/** Copies of everything a call could modify. */
function snapshotOf(c: Context) {
  return {
    weight: c.weight.slice(),
    out: c.out.slice(),
    weights: c.weights.map((w) => w.slice()),
    outs: c.outs.map((w) => w.slice()),
    u: c.sn.u,
    v: c.sn.v,
    batchU: [0, 1].map((i) => c.batch.u(i)),
    batchV: [0, 1].map((i) => c.batch.v(i)),
  };
}

function assertUnchanged(c: Context, before: ReturnType<typeof snapshotOf>): void {
  const after = snapshotOf(c);
  assertSameBytes(after.weight, before.weight, 'weight');
  assertSameBytes(after.out, before.out, 'out');
  after.weights.forEach((w, i) => assertSameBytes(w, before.weights[i], `weights[${i}]`));
  after.outs.forEach((w, i) => assertSameBytes(w, before.outs[i], `outs[${i}]`));
  assertSameBytes(after.u, before.u, 'u');
  assertSameBytes(after.v, before.v, 'v');
  after.batchU.forEach((u, i) => assertSameBytes(u, before.batchU[i], `batch u(${i})`));
  after.batchV.forEach((v, i) => assertSameBytes(v, before.batchV[i], `batch v(${i})`));
}

function expectError(error: unknown, expected: BadCase): void {
  assert.ok(
    error instanceof expected.error,
    `expected ${expected.error.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  assert.equal((error as Error).constructor, expected.error, `expected exactly ${expected.error.name}, got ${(error as Error).name}`);
  assert.match((error as Error).message, expected.message);
}

describe('bad input: a clear TypeError or RangeError naming the argument, and nothing modified', () => {
  for (const backend of backendsUnderTest()) {
    describe(`backend ${backend}`, () => {
      for (const bad of cases) {
        it(bad.name, () => {
          const c = context(backend);
          const before = snapshotOf(c);
          let thrown: unknown;
          try {
            bad.call(c);
          } catch (error) {
            thrown = error;
          }
          assert.ok(thrown !== undefined, 'expected an error, none was thrown');
          expectError(thrown, bad);
          assertUnchanged(c, before);
        });
      }
      for (const bad of asyncTwins) {
        it(`${bad.name} (rejects, never throws synchronously)`, async () => {
          const c = context(backend);
          const before = snapshotOf(c);
          let promise: unknown;
          assert.doesNotThrow(() => {
            promise = bad.call(c);
          });
          assert.ok(promise instanceof Promise);
          await promise.then(
            () => assert.fail('expected a rejection'),
            (error: unknown) => expectError(error, bad),
          );
          assertUnchanged(c, before);
        });
      }
    });
  }
});
