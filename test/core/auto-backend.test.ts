// 'auto' picks the backend by size class: pure JS where the native call's fixed cost exceeds the work.
import * as assert from 'node:assert/strict';

import { SpectralNormBatch, SpectralNormalizer, backendInfo, spectralNorm } from '../../lib';
import { AUTO_JS_MAX_ELEMENTS } from '../../lib/backends';

describe("'auto' by size class", () => {
  it('tiny jobs (≤ AUTO_JS_MAX_ELEMENTS weight elements in all) run in JS, larger ones native; explicit choices stand', function () {
    const info = backendInfo();
    if (!info.cpu.available || info.cuda.available) this.skip(); // the size class is between cpu and js
    assert.equal(new SpectralNormalizer([16, 16]).backend, 'js');
    assert.equal(new SpectralNormalizer([16, 17]).backend, 'cpu');
    assert.equal(new SpectralNormalizer([8, 8], { backend: 'cpu' }).backend, 'cpu');
    assert.equal(new SpectralNormBatch([{ shape: [8, 8] }, { shape: [8, 8] }]).backend, 'js');
    assert.equal(new SpectralNormBatch(Array.from({ length: 5 }, () => ({ shape: [8, 8] }))).backend, 'cpu');
    assert.equal(spectralNorm(new Float32Array(64).fill(1), [8, 8]).backend, 'js');
    assert.equal(spectralNorm(new Float32Array(4096).fill(1), [64, 64]).backend, 'cpu');
    assert.equal(AUTO_JS_MAX_ELEMENTS, 256);
  });
});
