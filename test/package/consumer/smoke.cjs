// Run by test/package/run.sh in a consumer project that installed the packed tarball with no compiler on PATH: the
// prebuilt addon must give the native CPU backend, with the same σ as the exact reference, and no warning.
'use strict';
const assert = require('node:assert/strict');
const path = require('node:path');

const warnings = [];
process.on('warning', (warning) => warnings.push(`${warning.code}: ${warning.message}`));

const sn = require('spectral-norm');
const info = sn.backendInfo();
assert.equal(info.cpu.available, true, `the native CPU backend did not load: ${info.cpu.reason}`);
assert.equal(
  info.cpu.path,
  path.join(path.dirname(require.resolve('spectral-norm/package.json')), 'prebuilds', 'linux-x64', 'spectral_norm.node'),
);
assert.equal(info.cuda.compiled, true, 'the prebuilt addon has no CUDA backend');

let seed = 7;
const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
const weight = Float32Array.from({ length: 96 * 75 }, next);
const exact = sn.exactSpectralNorm(weight, [96, 75]);
const r = sn.spectralNorm(weight, [96, 75], { backend: 'cpu', tolerance: 1e-7, maxIterations: 1000 });
assert.equal(r.backend, 'cpu');
assert.ok(Math.abs(r.sigma - exact) <= 1e-4 * exact, `cpu σ ${r.sigma} against exact ${exact}`);

const normalizer = new sn.SpectralNormalizer([96, 75], { backend: 'cpu', seed: 1 });
normalizer.warmup(weight, 50);
const sigma = normalizer.step(weight);
assert.ok(Math.abs(sigma - exact) <= 1e-3 * exact, `step σ ${sigma} against exact ${exact}`);

// The exports map: the package's root and package.json, nothing inside it.
assert.equal(require('spectral-norm/package.json').name, 'spectral-norm');
assert.throws(() => require('spectral-norm/dist/lib/backends'), { code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });

process.nextTick(() => {
  assert.deepEqual(warnings, []);
  console.log(
    `smoke.cjs: cpu (${info.cpu.simd}) σ ${r.sigma.toFixed(6)} = exact ${exact.toFixed(6)}; cuda compiled, ${info.cuda.reason ?? 'usable'}`,
  );
});
