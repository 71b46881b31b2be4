// Run by test/package/run.sh with the installed package's prebuilt addon moved away: the library runs on JS, and the
// first call that falls back emits one warning that says why and how to fix it; backendInfo() says the same.
'use strict';
const assert = require('node:assert/strict');

const warnings = [];
process.on('warning', (warning) => warnings.push(warning));

const sn = require('spectral-norm');
const w = new Float32Array(64).fill(0.5);
assert.equal(sn.spectralNorm(w, [8, 8]).backend, 'js');
sn.spectralNorm(w, [8, 8]);
new sn.SpectralNormalizer([8, 8]).step(w);

process.nextTick(() => {
  assert.equal(warnings.length, 1, `expected one warning, got ${warnings.length}`);
  assert.equal(warnings[0].code, sn.WarningCode.JsFallback);
  assert.match(warnings[0].message, /prebuilds\/linux-x64\/spectral_norm\.node: not found/);
  assert.match(warnings[0].message, /npm rebuild spectral-norm/);
  assert.ok(warnings[0].message.endsWith(sn.backendInfo().cpu.reason), 'backendInfo().cpu.reason says the same');
  console.log(`fallback.cjs: one warning: ${warnings[0].message}`);
});
