// Install without a toolchain and loading without the addon: one clear warning, then the pure-JS backend.
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('install and loading', () => {
  it('the install step succeeds with one clear warning when cmake is missing', () => {
    const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-build-'));
    const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-bin-'));
    try {
      // A PATH with node alone on it: no cmake, no compiler.
      fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
      const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-native.js')], {
        env: { PATH: binDir, SPECTRAL_NORM_BUILD_DIR: buildDir },
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `expected one warning line, got:\n${result.stderr}`);
      assert.match(lines[0], /^spectral-norm: WARNING: the native addon was not built \(cmake was not found on PATH\); the library will run on its pure-JS backend/);
      assert.equal(result.stdout, '');
      assert.deepEqual(fs.readdirSync(buildDir), [], 'nothing half-built is left behind');
    } finally {
      fs.rmSync(buildDir, { recursive: true, force: true });
      fs.rmSync(binDir, { recursive: true, force: true });
    }
  });

  it('without the addon the library runs on the pure-JS backend and says why the CPU backend is missing', () => {
    const script = `
      const sn = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))});
      const info = sn.backendInfo();
      const w = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1));
      const r = sn.spectralNorm(w, [3, 4]);
      let cpuError = '';
      try { new sn.SpectralNormalizer([3, 4], { backend: 'cpu' }); } catch (e) { cpuError = e.constructor.name + ': ' + e.message; }
      console.log(JSON.stringify({ available: info.available, auto: info.auto, reason: info.cpu.reason, backend: r.backend, sigma: r.sigma, cpuError }));
    `;
    const output = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, SPECTRAL_NORM_DISABLE_NATIVE: '1' },
      encoding: 'utf8',
    });
    const report = JSON.parse(output);
    assert.deepEqual(report.available, ['js']);
    assert.equal(report.auto, 'js');
    assert.equal(report.backend, 'js');
    assert.ok(report.sigma > 0);
    assert.match(report.reason, /SPECTRAL_NORM_DISABLE_NATIVE/);
    assert.match(report.cpuError, /^RangeError: options\.backend 'cpu' is unavailable: the native addon did not load \(SPECTRAL_NORM_DISABLE_NATIVE is set\)/);
  });

  it('an explicit SPECTRAL_NORM_BINDING that does not load is reported with its path, not replaced by another build', () => {
    const script = `console.log(JSON.stringify(require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))}).backendInfo()));`;
    const output = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, SPECTRAL_NORM_BINDING: '/nonexistent/spectral_norm.node' },
      encoding: 'utf8',
    });
    const info = JSON.parse(output);
    assert.deepEqual(info.available, ['js']);
    assert.match(info.cpu.reason, /\/nonexistent\/spectral_norm\.node: Cannot find module/);
  });
});
