// Run by test/package/run.sh: the package's named exports from an ES module.
import assert from 'node:assert/strict';

import { SpectralNormBatch, backendInfo, spectralNorm } from 'spectral-norm';

assert.equal(backendInfo().cpu.available, true);
const batch = new SpectralNormBatch([{ shape: [8, 8] }, { shape: [16, 4] }], { backend: 'cpu', seed: 3 });
const sigmas = batch.step([new Float32Array(64).fill(0.5), new Float32Array(64).fill(0.25)]);
assert.equal(sigmas.length, 2);
assert.ok(spectralNorm(new Float32Array(64).fill(1), [8, 8]).sigma > 0);
console.log(`smoke.mjs: ESM import and a batch step on ${batch.backend}`);
