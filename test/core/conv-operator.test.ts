// Convolution operators (issue 14): the convolution and its transpose on every backend against the JS reference,
// convSpectralNorm against the dense matrix's σ from LAPACK (test/fixtures/conv-sigma.json, built column by column
// and checked against PyTorch's conv2d) and against the FFT formula, the certificates lower ≤ σ ≤ upper on random
// and clustered cases, the properties of the operator norm, and spectralNorm's certified bounds on dense matrices.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { type ConvOptions, convSpectralNorm, exactSpectralNorm, spectralNorm } from '../../lib';
import { type ResolvedBackend, checkOperatorBackendOption, resolveOperatorBackend } from '../../lib/backends';
import { convForward, convTranspose } from '../../lib/conv/reference';
import { denseSigma, fftFormulaSigma, gaussianKernel, operatorOf, randomConv } from '../support/conv';
import { backendsUnderTest, gaussian, product, random, randomArray, randomInt } from '../support/helpers';

interface ConvCase {
  name: string;
  shape: number[];
  options: ConvOptions & { paddingMode: 'zeros' | 'circular' };
  dtype: 'float32' | 'float64';
  weight: number[];
  sigma: number;
  reshapedSigma: number;
}

const FIXTURES = path.join(__dirname, '..', '..', '..', 'test', 'fixtures');
const convFixture = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'conv-sigma.json'), 'utf8')) as { source: string; cases: ConvCase[] };
const lapack = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'lapack-sigma.json'), 'utf8')) as {
  cases: { name: string; shape: number[]; dim: number; dtype: 'float32' | 'float64'; weight: number[]; sigma: number }[];
};

// The cuda backend does not run convolution operators; its convApply and convSpectrum are the addon's CPU ones.
const backends = backendsUnderTest().filter((b) => b !== 'cuda') as ('cpu' | 'js')[];

const weightOf = (c: { dtype: 'float32' | 'float64'; weight: number[] }) =>
  c.dtype === 'float32' ? Float32Array.from(c.weight) : Float64Array.from(c.weight);

/** lower ≤ σ ≤ upper, where σ itself is known to a relative `slack` (LAPACK's or exactSpectralNorm's error). */
function assertBrackets(r: { lower: number; upper: number; sigma: number }, sigma: number, slack: number, what: string): void {
  assert.ok(r.lower <= sigma * (1 + slack) + 1e-300, `${what}: lower ${r.lower} > σ ${sigma}`);
  assert.ok(r.upper >= sigma * (1 - slack), `${what}: upper ${r.upper} < σ ${sigma}`);
  assert.ok(r.lower <= r.sigma && r.sigma <= r.upper, `${what}: σ estimate ${r.sigma} outside [${r.lower}, ${r.upper}]`);
}

function resolved(name: 'cpu' | 'js'): ResolvedBackend {
  return resolveOperatorBackend(checkOperatorBackendOption('backend', name));
}

describe('convolution operators', () => {
  describe('conv2d and its transpose', () => {
    for (const backend of backends) {
      it(`${backend}: convApply matches the JS reference on random geometries, and its transpose is the adjoint`, () => {
        const impl = resolved(backend).impl;
        for (let trial = 0; trial < 60; trial++) {
          const { op } = randomConv();
          const dtype = random() < 0.5 ? 'float32' : 'float64';
          const weight = randomArray(dtype, product([op.outChannels, op.inChannels, op.kernelHeight, op.kernelWidth]));
          const x = Float64Array.from(randomArray('float64', op.inChannels * op.inputHeight * op.inputWidth));
          const y = Float64Array.from(randomArray('float64', op.outChannels * op.outputHeight * op.outputWidth));
          const expectedY = new Float64Array(y.length);
          const expectedT = new Float64Array(x.length);
          convForward(weight, op, x, expectedY);
          convTranspose(weight, op, y, expectedT);
          const gotY = new Float64Array(y.length).fill(NaN);
          const gotT = new Float64Array(x.length).fill(NaN);
          impl.convApply({ weight, operator: op, transpose: false, input: x, output: gotY, threads: randomInt(1, 3) });
          impl.convApply({ weight, operator: op, transpose: true, input: y, output: gotT, threads: randomInt(1, 3) });
          const scale = Math.sqrt(op.inChannels * op.kernelHeight * op.kernelWidth) * 8;
          for (let i = 0; i < y.length; i++)
            assert.ok(Math.abs(gotY[i] - expectedY[i]) <= 1e-14 * scale, `trial ${trial}: y[${i}] ${gotY[i]} vs ${expectedY[i]}`);
          for (let i = 0; i < x.length; i++)
            assert.ok(Math.abs(gotT[i] - expectedT[i]) <= 1e-14 * scale * 4, `trial ${trial}: t[${i}] ${gotT[i]} vs ${expectedT[i]}`);
          // ⟨C x, y⟩ = ⟨x, Cᵀ y⟩
          let left = 0;
          let right = 0;
          for (let i = 0; i < y.length; i++) left += gotY[i] * y[i];
          for (let i = 0; i < x.length; i++) right += x[i] * gotT[i];
          assert.ok(Math.abs(left - right) <= 1e-12 * (Math.abs(left) + scale), `trial ${trial}: ⟨Cx, y⟩ ${left} vs ⟨x, Cᵀy⟩ ${right}`);
        }
      });
    }
  });

  describe('conv2d and its transpose on outputs that take several chunks', () => {
    // The native operator goes through the output positions in chunks of about 2^17 / ((cin·kh·kw + cout)·16)
    // panels of 16: these geometries take several chunks, the last one short and its last panel partial.
    for (const backend of backends) {
      it(`${backend}: convApply matches the JS reference, in both layouts and dtypes, on any thread count`, () => {
        const impl = resolved(backend).impl;
        const cases: { shape: number[]; options: ConvOptions }[] = [
          { shape: [9, 40, 3, 3], options: { inputSize: [47, 41], padding: 1 } },
          { shape: [3, 3, 40, 9], options: { inputSize: [45, 43], padding: 1, stride: [2, 1], paddingMode: 'circular', layout: 'hwio' } },
          { shape: [12, 64, 4, 4], options: { inputSize: [50, 37], padding: 2, stride: 2 } },
        ];
        for (const { shape, options } of cases) {
          const op = operatorOf(shape, options);
          const positions = op.outputHeight * op.outputWidth;
          const chunk = Math.floor(2 ** 17 / ((op.inChannels * op.kernelHeight * op.kernelWidth + op.outChannels) * 16)) * 16;
          assert.ok(positions > 2 * chunk && positions % 16 !== 0, `[${shape}]: ${positions} positions in chunks of ${chunk}`);
          for (const dtype of ['float32', 'float64'] as const) {
            const weight = randomArray(dtype, product(shape));
            const x = Float64Array.from(randomArray('float64', op.inChannels * op.inputHeight * op.inputWidth));
            const y = Float64Array.from(randomArray('float64', op.outChannels * positions));
            const expectedY = new Float64Array(y.length);
            const expectedT = new Float64Array(x.length);
            convForward(weight, op, x, expectedY);
            convTranspose(weight, op, y, expectedT);
            const scale = Math.sqrt(op.inChannels * op.kernelHeight * op.kernelWidth) * 8;
            for (const threads of [1, 2, 3]) {
              const gotY = new Float64Array(y.length).fill(NaN);
              const gotT = new Float64Array(x.length).fill(NaN);
              impl.convApply({ weight, operator: op, transpose: false, input: x, output: gotY, threads });
              impl.convApply({ weight, operator: op, transpose: true, input: y, output: gotT, threads });
              const what = `[${shape}] ${dtype} ${threads} threads`;
              for (let i = 0; i < y.length; i++)
                assert.ok(Math.abs(gotY[i] - expectedY[i]) <= 1e-14 * scale, `${what}: y[${i}] ${gotY[i]} vs ${expectedY[i]}`);
              for (let i = 0; i < x.length; i++)
                assert.ok(Math.abs(gotT[i] - expectedT[i]) <= 1e-14 * scale * 4, `${what}: t[${i}] ${gotT[i]} vs ${expectedT[i]}`);
            }
          }
        }
      });
    }
  });

  describe('against the dense matrix', () => {
    it(`the JS reference builds the same matrix as numpy and PyTorch: its σ matches every fixture case (${convFixture.source})`, () => {
      for (const c of convFixture.cases) {
        const sigma = denseSigma(weightOf(c), operatorOf(c.shape, c.options));
        assert.ok(Math.abs(sigma - c.sigma) <= 1e-10 * Math.max(c.sigma, 1e-300), `${c.name}: ${sigma} vs LAPACK ${c.sigma}`);
      }
    });

    for (const backend of backends) {
      it(`${backend}: lower ≤ σ ≤ upper on every fixture case; exact (1e-9) with circular padding whose outputs are the circulant's rows`, () => {
        for (const c of convFixture.cases) {
          const r = convSpectralNorm(weightOf(c), c.shape, { ...c.options, backend, tolerance: 1e-13, maxIterations: 100000 });
          assert.equal(r.backend, backend);
          assertBrackets(r, c.sigma, 1e-12, `${backend} ${c.name}`);
          const close = (x: number) => Math.abs(x - c.sigma) <= 1e-9 * c.sigma;
          if (c.sigma === 0) {
            assert.equal(r.upper, 0, `${c.name}: a zero kernel's upper bound`);
            continue;
          }
          if (r.method === 'fft') {
            assert.ok(r.upper / r.lower - 1 <= 1e-9, `${c.name}: exact, but upper/lower − 1 = ${r.upper / r.lower - 1}`);
            assert.ok(close(r.sigma), `${c.name}: ${r.sigma} vs ${c.sigma}`);
          } else {
            assert.ok(Math.abs(r.sigma - c.sigma) <= 1e-6 * c.sigma, `${c.name}: power iteration σ ${r.sigma} vs ${c.sigma}`);
          }
          if (c.options.paddingMode === 'circular' && /exact/.test(c.name)) assert.equal(r.method, 'fft', `${c.name} uses the FFT method`);
        }
      });
    }
  });

  describe('against the FFT formula, at larger sizes', () => {
    const shapes: [number[], ConvOptions][] = [
      [[8, 6, 3, 3], { inputSize: [24, 20], padding: 1, paddingMode: 'circular' }],
      [[5, 9, 5, 5], { inputSize: [16, 18], padding: 2, paddingMode: 'circular' }],
      [[12, 12, 1, 1], { inputSize: [11, 13], paddingMode: 'circular' }],
      [[3, 3, 6, 7], { inputSize: [32, 30], padding: 1, paddingMode: 'circular', layout: 'hwio' }],
    ];
    for (const backend of backends) {
      it(`${backend}: σ matches the formula to 1e-9 and the bounds bracket it`, () => {
        for (const [shape, options] of shapes) {
          const op = operatorOf(shape, options);
          const weight = gaussianKernel(product(shape));
          const expected = fftFormulaSigma(weight, op);
          const r = convSpectralNorm(weight, shape, { ...options, backend });
          assert.equal(r.method, 'fft');
          assertBrackets(r, expected, 1e-12, `${backend} [${shape}]`);
          assert.ok(Math.abs(r.sigma / expected - 1) <= 1e-9, `[${shape}]: ${r.sigma} vs formula ${expected}`);
          assert.ok(r.upper / r.lower - 1 <= 1e-9, `[${shape}]: upper/lower − 1 = ${r.upper / r.lower - 1}`);
        }
      });
    }
  });

  describe('certificates', () => {
    for (const backend of backends) {
      it(`${backend}: lower ≤ σ ≤ upper on random convolutions of every kind`, () => {
        for (let trial = 0; trial < 40; trial++) {
          const { shape, options, op } = randomConv();
          const weight = gaussianKernel(product(shape), random() < 0.5 ? 'float32' : 'float64');
          const sigma = denseSigma(weight, op);
          const r = convSpectralNorm(weight, shape, { ...options, backend });
          assertBrackets(r, sigma, 1e-11, `${backend} trial ${trial} [${shape}] ${JSON.stringify(options)}`);
        }
      });

      it(`${backend}: clustered spectra (every singular value equal, or a repeated top) keep the bounds tight`, () => {
        for (let trial = 0; trial < 8; trial++) {
          const c = randomInt(2, 6);
          const k = 2 * randomInt(0, 2) + 1;
          const q = orthogonal(c);
          // A delta kernel mixing channels orthogonally: every singular value is exactly |scale|.
          const scale = (random() < 0.5 ? -1 : 1) * 2 ** randomInt(-30, 30);
          const weight = new Float64Array(c * c * k * k);
          for (let o = 0; o < c; o++)
            for (let i = 0; i < c; i++) weight[((o * c + i) * k + (k - 1) / 2) * k + (k - 1) / 2] = q[o * c + i] * scale;
          for (const paddingMode of ['circular', 'zeros'] as const) {
            const options = { inputSize: [randomInt(k, 9), randomInt(k, 9)], padding: (k - 1) / 2, paddingMode };
            const r = convSpectralNorm(weight, [c, c, k, k], { ...options, backend });
            assertBrackets(r, Math.abs(scale), 1e-12, `${backend} ${paddingMode} delta kernel`);
            if (paddingMode === 'circular') assert.ok(r.upper / r.lower - 1 <= 1e-9, `circular delta kernel: ${r.upper / r.lower - 1}`);
          }
        }
        // A point-symmetric kernel: real blocks, so f and −f repeat every singular value.
        const shape = [4, 4, 3, 3];
        const w = gaussianKernel(144);
        for (let i = 0; i < 144; i++) {
          const b = i % 3;
          const a = Math.floor(i / 3) % 3;
          const mirror = i - a * 3 - b + (2 - a) * 3 + (2 - b);
          if (mirror > i) w[mirror] = w[i];
        }
        const op = operatorOf(shape, { inputSize: [10, 9], padding: 1, paddingMode: 'circular' });
        const r = convSpectralNorm(w, shape, { inputSize: [10, 9], padding: 1, paddingMode: 'circular', backend });
        assertBrackets(r, denseSigma(w, op), 1e-12, 'point-symmetric kernel');
        assert.ok(r.upper / r.lower - 1 <= 1e-9);
      });
    }
  });

  describe('properties', () => {
    for (const backend of backends) {
      it(`${backend}: σ scales with |c|, at any magnitude`, () => {
        for (let trial = 0; trial < 10; trial++) {
          const { shape, options } = randomConv();
          const w = gaussianKernel(product(shape));
          const base = convSpectralNorm(w, shape, { ...options, backend, tolerance: 1e-12, maxIterations: 100000 });
          // Powers of two scale every operation exactly: the same bits, scaled.
          for (const c of [2 ** -600, -(2 ** 70), 2 ** -1000]) {
            const r = convSpectralNorm(
              w.map((x) => x * c),
              shape,
              { ...options, backend, tolerance: 1e-12, maxIterations: 100000 },
            );
            for (const key of ['sigma', 'lower', 'upper'] as const) {
              assert.ok(
                Math.abs(r[key] / Math.abs(c) - base[key]) <= 1e-14 * base[key],
                `${key} ×${c}: ${r[key] / Math.abs(c)} vs ${base[key]}`,
              );
            }
          }
          // Any other factor rounds differently: the bounds and the FFT method's σ still scale to 1e-9, and power
          // iteration's σ (and the lower bound from its vector) to its convergence.
          for (const c of [-3, 1.5e-7, 7e11]) {
            const r = convSpectralNorm(
              w.map((x) => x * c),
              shape,
              { ...options, backend, tolerance: 1e-12, maxIterations: 100000 },
            );
            const s = Math.abs(c);
            const within = (key: 'sigma' | 'lower' | 'upper', rtol: number) =>
              assert.ok(Math.abs(r[key] / (base[key] * s) - 1) <= rtol || base[key] === 0, `${key} ×${c}: ${r[key]} vs ${base[key] * s}`);
            within('upper', 1e-9);
            within('sigma', base.method === 'fft' ? 1e-9 : 1e-7);
            within('lower', base.method === 'fft' ? 1e-9 : 1e-7);
          }
        }
      });

      it(`${backend}: 'hwio' and 'oihw' give the same σ and bounds for the same operator`, () => {
        for (let trial = 0; trial < 10; trial++) {
          const { shape, options } = randomConv();
          const oihw = options.layout === 'oihw' ? shape : [shape[3], shape[2], shape[0], shape[1]];
          const w = gaussianKernel(product(oihw));
          const [cout, cin, kh, kw] = oihw;
          const hwio = new Float64Array(w.length);
          for (let o = 0; o < cout; o++)
            for (let c = 0; c < cin; c++)
              for (let a = 0; a < kh; a++)
                for (let b = 0; b < kw; b++) {
                  hwio[((a * kw + b) * cin + c) * cout + o] = w[((o * cin + c) * kh + a) * kw + b];
                }
          const r1 = convSpectralNorm(w, oihw, { ...options, layout: 'oihw', backend });
          const r2 = convSpectralNorm(hwio, [kh, kw, cin, cout], { ...options, layout: 'hwio', backend });
          for (const key of ['sigma', 'lower', 'upper'] as const) {
            assert.ok(Math.abs(r1[key] - r2[key]) <= 1e-14 * r1[key], `${key}: oihw ${r1[key]}, hwio ${r2[key]}`);
          }
        }
      });

      it(`${backend}: a 1×1 kernel's operator σ equals its matrix σ`, () => {
        for (let trial = 0; trial < 10; trial++) {
          const cout = randomInt(1, 12);
          const cin = randomInt(1, 12);
          const w = gaussianKernel(cout * cin);
          const exact = exactSpectralNorm(w, [cout, cin]);
          for (const paddingMode of ['zeros', 'circular'] as const) {
            const r = convSpectralNorm(w, [cout, cin, 1, 1], { inputSize: [randomInt(1, 7), randomInt(1, 7)], paddingMode, backend });
            assertBrackets(r, exact, 1e-12, `1×1 ${paddingMode}`);
            assert.ok(Math.abs(r.sigma / exact - 1) <= 1e-9, `1×1 ${paddingMode}: ${r.sigma} vs matrix σ ${exact}`);
          }
        }
      });

      it(`${backend}: stride never increases the upper bound`, () => {
        for (let trial = 0; trial < 20; trial++) {
          const { shape, options } = randomConv();
          const w = gaussianKernel(product(shape));
          const one = convSpectralNorm(w, shape, { ...options, stride: 1, backend });
          for (const stride of [2, 3, [1, 2], [2, 1]] as const) {
            const r = convSpectralNorm(w, shape, { ...options, stride: stride as number | number[], backend });
            assert.ok(
              r.upper <= one.upper,
              `stride ${JSON.stringify(stride)}: upper ${r.upper} > stride 1's ${one.upper} (${JSON.stringify(options)})`,
            );
          }
        }
      });
    }

    it('the backends agree', () => {
      if (backends.length < 2) return;
      for (let trial = 0; trial < 10; trial++) {
        const { shape, options } = randomConv();
        const w = gaussianKernel(product(shape));
        // Converged far: power iteration from the two backends' rounding then ends at the same σ.
        const [a, b] = backends.map((backend) =>
          convSpectralNorm(w, shape, { ...options, backend, tolerance: 1e-13, maxIterations: 100000 }),
        );
        assert.equal(a.method, b.method);
        assert.ok(Math.abs(a.upper / b.upper - 1) <= 1e-9, `upper: ${a.upper} vs ${b.upper}`);
        assert.ok(Math.abs(a.sigma / b.sigma - 1) <= 1e-9, `σ: ${a.sigma} vs ${b.sigma}`);
      }
    });
  });

  describe('the result', () => {
    for (const backend of backends) {
      it(`${backend}: exactly the contract's fields; iterations and converged follow tolerance and maxIterations`, () => {
        const shape = [5, 3, 3, 3];
        const w = gaussianKernel(product(shape));
        const keys = ['backend', 'converged', 'iterations', 'lower', 'method', 'sigma', 'upper'];
        // The FFT method: no power iterations, exact, converged.
        const fft = convSpectralNorm(w, shape, { inputSize: [7, 6], padding: 1, paddingMode: 'circular', backend });
        assert.deepEqual(Object.keys(fft).sort(), keys);
        assert.equal(fft.method, 'fft');
        assert.equal(fft.iterations, 0);
        assert.equal(fft.converged, true);
        assert.equal(fft.backend, backend);
        // Power iteration: stopped by maxIterations before the tolerance is met, then run to the tolerance.
        const options = { inputSize: [9, 7], padding: 1, stride: 2, backend } as const;
        const short = convSpectralNorm(w, shape, { ...options, tolerance: 0, maxIterations: 2 });
        assert.deepEqual(Object.keys(short).sort(), keys);
        assert.equal(short.method, 'power-iteration');
        assert.equal(short.iterations, 2);
        assert.equal(short.converged, false);
        const full = convSpectralNorm(w, shape, { ...options, tolerance: 1e-10, maxIterations: 100000 });
        assert.equal(full.converged, true);
        assert.ok(full.iterations > 2 && full.iterations < 100000, `iterations ${full.iterations}`);
        const dense = denseSigma(w, operatorOf(shape, { inputSize: [9, 7], padding: 1, stride: 2 }));
        assertBrackets(short, dense, 1e-12, 'maxIterations 2');
        assertBrackets(full, dense, 1e-12, 'tolerance 1e-10');
        // The tolerance bounds the change between iterations, not the error: 1e-10 of change leaves σ within 1e-6 here.
        assert.ok(Math.abs(full.sigma / dense - 1) <= 1e-6, `σ ${full.sigma} vs the dense matrix's ${dense}`);
      });
    }
  });

  describe("spectralNorm's certified bounds on dense matrices", () => {
    for (const backend of backendsUnderTest()) {
      it(`${backend}: lower ≤ σ ≤ upper with upper/lower − 1 ≤ 1e-6 on every LAPACK fixture case`, () => {
        for (const c of lapack.cases) {
          const r = spectralNorm(weightOf(c), c.shape, { dim: c.dim, certify: true, backend });
          assert.ok(r.lower !== undefined && r.upper !== undefined, `${c.name}: no bounds`);
          assertBrackets({ lower: r.lower, upper: r.upper, sigma: r.lower }, c.sigma, 1e-12, `${backend} ${c.name}`);
          if (c.sigma > 0) assert.ok(r.upper / r.lower - 1 <= 1e-6, `${c.name}: upper/lower − 1 = ${r.upper / r.lower - 1}`);
        }
      });

      it(`${backend}: the top two singular values within 0.1%, or equal, still give upper/lower − 1 ≤ 1e-6`, () => {
        for (const [m, n, top] of [
          [40, 30, [3, 3 * (1 - 1e-3), 1]],
          [25, 60, [2, 2, 2, 0.5]],
          [64, 64, [1, 1 - 1e-4, 1 - 2e-4, 1 - 3e-4]],
        ] as [number, number, number[]][]) {
          const w = withSpectrum(m, n, top);
          const r = spectralNorm(w, [m, n], { certify: true, backend });
          assertBrackets({ lower: r.lower!, upper: r.upper!, sigma: r.lower! }, top[0], 1e-12, `${m}×${n}`);
          assert.ok(r.upper! / r.lower! - 1 <= 1e-6, `${m}×${n}: upper/lower − 1 = ${r.upper! / r.lower! - 1}`);
        }
      });
    }

    it('without certify there are no bounds', () => {
      const r = spectralNorm(new Float64Array([1, 2, 3, 4]), [2, 2]);
      assert.equal(r.lower, undefined);
      assert.equal(r.upper, undefined);
    });
  });
});

/** A random c × c orthogonal matrix (Gram–Schmidt on Gaussian columns). */
function orthogonal(c: number): Float64Array {
  const q = new Float64Array(c * c);
  for (let j = 0; j < c; j++) {
    const v = Array.from({ length: c }, () => gaussian());
    for (let k = 0; k < j; k++) {
      let d = 0;
      for (let i = 0; i < c; i++) d += v[i] * q[i * c + k];
      for (let i = 0; i < c; i++) v[i] -= d * q[i * c + k];
    }
    const norm = Math.hypot(...v);
    for (let i = 0; i < c; i++) q[i * c + j] = v[i] / norm;
  }
  return q;
}

/** An m × n matrix U·diag(s)·Vᵀ with random orthonormal U and V: its singular values are s (and zeros). */
function withSpectrum(m: number, n: number, s: number[]): Float64Array {
  const u = orthogonal(m);
  const v = orthogonal(n);
  const w = new Float64Array(m * n);
  s.forEach((value, k) => {
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) w[i * n + j] += u[i * m + k] * value * v[j * n + k];
  });
  return w;
}
