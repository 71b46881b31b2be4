// "Real SN" (issue 14): SpectralNormalizer and SpectralNormBatch with a convolution operator. Each iteration is a
// convolution and its transpose, against PyTorch's power iteration written out in float64 with the JS reference
// convolution; with every mode of the normalizer: update, out, warm-up, legacy, state()/fromState(), seeds, the zero
// and non-finite rules, async, threads.
import * as assert from 'node:assert/strict';

import type { ConvOperatorOptions } from '../../lib';
import { SpectralNormBatch, SpectralNormalizer, autoBackend, backendInfo, convSpectralNorm } from '../../lib';
import { denseMatrix, gaussianKernel, operatorOf, randomConv, referenceConvStep } from '../support/conv';
import { singularValues } from '../support/reference';
import {
  assertClose,
  assertSameBytes,
  backendsUnderTest,
  poisoned,
  product,
  random,
  randomInt,
  snapshot,
  toleranceFor,
} from '../support/helpers';
import { referenceDivide } from '../support/reference';

const backends = backendsUnderTest().filter((b) => b !== 'cuda') as ('cpu' | 'js')[];

function randomOperator(): { shape: number[]; operator: ConvOperatorOptions } {
  const { shape, options } = randomConv();
  return { shape, operator: { kind: 'conv2d', ...options } };
}

describe('SpectralNormalizer with a convolution operator', () => {
  for (const backend of backends) {
    it(`${backend}: step, eval step and warm-up follow PyTorch's power iteration through conv2d and its transpose`, () => {
      for (let trial = 0; trial < 24; trial++) {
        const { shape, operator } = randomOperator();
        const op = operatorOf(shape, operator);
        const dtype = random() < 0.5 ? 'float32' : 'float64';
        const legacy = random() < 0.3;
        const iterations = randomInt(1, 3);
        const at = `${backend} ${dtype} [${shape}] ${JSON.stringify(operator)}${legacy ? ' legacy' : ''}`;
        const tol = toleranceFor(dtype);
        const weight = gaussianKernel(product(shape), dtype);
        const sn = new SpectralNormalizer(shape, { operator, dtype, legacy, iterations, backend, seed: trial });
        assert.equal(sn.u.length, op.outChannels * op.outputHeight * op.outputWidth, `${at}: u is output-shaped`);
        assert.equal(sn.v.length, op.inChannels * op.inputHeight * op.inputWidth, `${at}: v is input-shaped`);
        const u00 = sn.u;
        const v00 = sn.v;
        const warm = sn.warmup(weight, 3);
        assertClose(warm, referenceConvStep(weight, op, u00, v00, 3, 1e-12, legacy, dtype).sigma, tol, `${at}: warm-up σ`);
        const u0 = sn.u;
        const v0 = sn.v;
        const out = poisoned(dtype, weight.length);
        const sigma = sn.step(weight, { out });
        const ref = referenceConvStep(weight, op, u0, v0, iterations, 1e-12, legacy, dtype);
        assertClose(sigma, ref.sigma, tol, `${at}: σ`);
        assertClose(sn.u, ref.u, tol, `${at}: u`);
        assertClose(sn.v, ref.v, tol, `${at}: v`);
        assertClose(out, referenceDivide(weight, sigma, dtype), { rtol: 0, atol: 0 }, `${at}: out = W/σ exactly`);
        const evalOut = poisoned(dtype, weight.length);
        const evalSigma = sn.step(weight, { update: false, out: evalOut });
        assertClose(evalSigma, referenceConvStep(weight, op, sn.u, sn.v, 0, 1e-12, legacy, dtype).sigma, tol, `${at}: eval σ`);
      }
    });

    it(`${backend}: in-place steps converge to the operator norm, not the reshaped matrix's σ`, () => {
      const shape = [4, 3, 3, 3];
      const operator: ConvOperatorOptions = { kind: 'conv2d', inputSize: [6, 6], padding: 1, paddingMode: 'circular' };
      const weight = gaussianKernel(product(shape), 'float64');
      // The operator's singular values, from its dense matrix: σ₁ exactly, and from the gap to the next distinct one
      // the iterations power iteration needs to reach 1e-12 from a random start (a random kernel's top two can be as
      // close as 0.997, where a fixed 2000 iterations leave σ 2e-6 short).
      const matrix = denseMatrix(weight, operatorOf(shape, operator));
      const spectrum = singularValues(matrix);
      const exact = spectrum[0];
      const next = spectrum.find((s) => s < exact * (1 - 1e-9)) ?? 0;
      const iterations = Math.min(
        100_000,
        10 + Math.ceil(Math.log(1e-12 / matrix.cols) / (2 * Math.log(Math.max(next / exact, Number.MIN_VALUE)))),
      );
      const sn = new SpectralNormalizer(shape, { operator, dtype: 'float64', backend, seed: 3 });
      const sigma = sn.warmup(weight, iterations);
      assert.ok(
        Math.abs(sigma - exact) <= 1e-9 * exact,
        `warm-up σ ${sigma} vs ${exact} (σ₂/σ₁ ${next / exact}, ${iterations} iterations)`,
      );
      const w = weight.slice();
      sn.step(w);
      // After W ← W/σ the operator norm is 1 (to the power iteration's accuracy).
      const again = new SpectralNormalizer(shape, { operator, dtype: 'float64', backend, seed: 4 });
      assert.ok(Math.abs(again.warmup(w, iterations) - 1) <= 1e-6);
    });

    it(`${backend}: a NaN in a tap that only ever meets padding is refused too, and modifies nothing`, () => {
      // A 3×3 kernel on a 1×1 input with padding 1: only the centre tap sees the input, so a NaN in a corner never
      // enters the convolution (the js backend once normalized such a kernel and wrote NaN into out).
      const shape = [2, 1, 3, 3];
      const operator: ConvOperatorOptions = { kind: 'conv2d', inputSize: [1, 1], padding: 1 };
      const sn = new SpectralNormalizer(shape, { operator, backend, seed: 5 });
      const u = sn.u;
      const v = sn.v;
      const bad = gaussianKernel(product(shape), 'float32');
      const corners = [0, 2, 6, 8, 9, 11, 15, 17]; // of either output channel's 3×3 kernel
      bad[corners[randomInt(0, corners.length - 1)]] = random() < 0.5 ? NaN : Infinity;
      const before = snapshot(bad);
      const out = poisoned('float32', bad.length);
      assert.throws(
        () => sn.step(bad, { out }),
        (e: Error) => e instanceof RangeError && /^weight contains NaN or Infinity/.test(e.message),
      );
      assertSameBytes(bad, before, 'weight');
      assert.ok(
        out.every((x) => Number.isNaN(x)),
        'out untouched',
      );
      assertSameBytes(sn.u, u, 'u');
      assertSameBytes(sn.v, v, 'v');
    });

    it(`${backend}: state() and fromState() continue exactly`, () => {
      const { shape, operator } = randomOperator();
      const weight = gaussianKernel(product(shape), 'float32');
      const a = new SpectralNormalizer(shape, { operator, iterations: 2, backend, seed: 11 });
      a.warmup(weight, 5);
      const state = JSON.parse(JSON.stringify(a.state()));
      assert.deepEqual(state.operator.inputSize, operator.inputSize);
      const b = SpectralNormalizer.fromState(state, { backend });
      for (let step = 0; step < 3; step++) {
        const outA = poisoned('float32', weight.length);
        const outB = poisoned('float32', weight.length);
        assert.equal(a.step(weight, { out: outA }), b.step(weight, { out: outB }));
        assertSameBytes(outA, outB, 'out');
      }
      assertSameBytes(a.u, b.u, 'u');
      assertSameBytes(a.v, b.v, 'v');
    });

    it(`${backend}: a zero kernel is left as it is, and NaN modifies nothing`, () => {
      const { shape, operator } = randomOperator();
      const zero = new Float32Array(product(shape));
      const sn = new SpectralNormalizer(shape, { operator, backend, seed: 5 });
      const u = sn.u;
      const v = sn.v;
      assert.equal(sn.step(zero), 0);
      assert.ok(zero.every((x) => x === 0));
      assertSameBytes(sn.u, u, 'u kept for a zero kernel');
      assertSameBytes(sn.v, v, 'v kept for a zero kernel');
      const bad = gaussianKernel(product(shape), 'float32');
      bad[randomInt(0, bad.length - 1)] = NaN;
      const before = snapshot(bad);
      const out = poisoned('float32', bad.length);
      assert.throws(
        () => sn.step(bad, { out }),
        (e: Error) => e instanceof RangeError && /^weight contains NaN or Infinity/.test(e.message),
      );
      assertSameBytes(bad, before, 'weight');
      assert.ok(
        out.every((x) => Number.isNaN(x)),
        'out untouched',
      );
      assertSameBytes(sn.u, u, 'u');
      assertSameBytes(sn.v, v, 'v');
    });

    it(`${backend}: the same seed gives the same bits; async gives what sync gives`, async () => {
      const { shape, operator } = randomOperator();
      const weight = gaussianKernel(product(shape), 'float32');
      const a = new SpectralNormalizer(shape, { operator, backend, seed: 99 });
      const b = new SpectralNormalizer(shape, { operator, backend, seed: 99 });
      assertSameBytes(a.u, b.u, 'u from the seed');
      const wa = weight.slice();
      const wb = weight.slice();
      assert.equal(await a.stepAsync(wa), b.step(wb));
      assertSameBytes(wa, wb, 'weight divided in place');
      assert.equal(await a.warmupAsync(weight, 4), b.warmup(weight, 4));
    });
  }

  it('the backends give the same σ (to rounding) from the same seed', () => {
    if (backends.length < 2) return;
    for (let trial = 0; trial < 10; trial++) {
      const { shape, operator } = randomOperator();
      const weight = gaussianKernel(product(shape), 'float64');
      const [a, b] = backends.map((backend) =>
        new SpectralNormalizer(shape, { operator, backend, seed: trial, dtype: 'float64', iterations: 3 }).step(weight.slice()),
      );
      assertClose(a, b, toleranceFor('float64'), `[${shape}]`);
    }
  });

  if (backends.includes('cpu')) {
    it('cpu: a layer large enough for several threads gives the same bits on any thread count', () => {
      const shape = [32, 24, 3, 3];
      const operator: ConvOperatorOptions = { kind: 'conv2d', inputSize: [23, 21], padding: 1, stride: [1, 2] };
      const weight = gaussianKernel(product(shape), 'float32');
      const results = [1, 2, 3].map((threads) => {
        const sn = new SpectralNormalizer(shape, { operator, backend: 'cpu', threads, seed: 1, iterations: 2 });
        const out = poisoned('float32', weight.length);
        return { sigma: sn.step(weight, { out }), out, u: sn.u, v: sn.v };
      });
      for (const r of results.slice(1)) {
        assert.equal(r.sigma, results[0].sigma);
        assertSameBytes(r.out, results[0].out, 'out');
        assertSameBytes(r.v, results[0].v, 'v');
      }
    });
  }

  it("'auto': operator layers run on the cpu (js without the addon), whatever the cost model would pick", () => {
    const expected = backendInfo().cpu.available ? 'cpu' : 'js';
    const operator: ConvOperatorOptions = { kind: 'conv2d', inputSize: [8, 8] };
    const shape = [4, 3, 3, 3];
    assert.equal(new SpectralNormalizer(shape, { operator }).backend, expected);
    // A tiny matrix layer beside it: the cost model is not asked, the operator decides.
    assert.equal(new SpectralNormBatch([{ shape: [2, 2] }, { shape, operator }]).backend, expected);
    assert.equal(autoBackend([{ shape: [2, 2] }, { shape, operator }]), expected);
    assert.equal(convSpectralNorm(gaussianKernel(product(shape), 'float32'), shape, { inputSize: [8, 8] }).backend, expected);
    assert.throws(
      () => autoBackend([{ shape, operator }], { onDevice: true }),
      /^RangeError: options\.onDevice is true, but the cuda backend does not run convolution operators yet/,
    );
  });

  if (backendInfo().available.includes('cuda')) {
    it('cuda: operator layers are refused with a RangeError, never run wrongly', () => {
      assert.throws(
        () => new SpectralNormalizer([4, 3, 3, 3], { operator: { kind: 'conv2d', inputSize: [8, 8] }, backend: 'cuda' }),
        /^RangeError: options\.backend 'cuda' does not run convolution operators yet/,
      );
      assert.equal(new SpectralNormalizer([4, 3, 3, 3], { operator: { kind: 'conv2d', inputSize: [8, 8] } }).backend, 'cpu');
    });
  }
});

describe('SpectralNormBatch with convolution operators', () => {
  for (const backend of backends) {
    it(`${backend}: operator and matrix layers together give each layer's normalizer bits`, async () => {
      const specs = [randomOperator(), { shape: [6, 4, 2, 2] }, randomOperator()].map((s, i) => ({ ...s, seed: 40 + i, name: `l${i}` }));
      const weights = specs.map((s) => gaussianKernel(product(s.shape), 'float32'));
      const batch = new SpectralNormBatch(specs, { backend, iterations: 2 });
      const alone = specs.map(
        (s) =>
          new SpectralNormalizer(s.shape, { operator: 'operator' in s ? s.operator : undefined, seed: s.seed, backend, iterations: 2 }),
      );
      const outs = weights.map((w) => poisoned('float32', w.length));
      const sigmas = batch.step(weights, { out: outs });
      alone.forEach((sn, i) => {
        const out = poisoned('float32', weights[i].length);
        assert.equal(sigmas[i], sn.step(weights[i], { out }), `layer ${i} σ`);
        assertSameBytes(outs[i], out, `layer ${i} out`);
        assertSameBytes(batch.v(i), sn.v, `layer ${i} v`);
      });
      const restored = SpectralNormBatch.fromState(JSON.parse(JSON.stringify(batch.state())), { backend });
      const next = await batch.stepAsync(weights.map((w) => w.slice()));
      assert.deepEqual(restored.step(weights.map((w) => w.slice())), next);
    });
  }
});
