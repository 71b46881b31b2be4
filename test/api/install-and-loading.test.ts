// Install and loading: the prebuilt addon where it loads, a build from source where it does not, and without either
// one clear warning at install and one at run time, then the pure-JS backend. SN_REQUIRE_NATIVE=1 (set by CI) makes
// a missing addon a failure.
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { backendInfo } from '../../lib/backends';
import { WarningCode } from '../../lib/codes';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUILT_ADDON = backendInfo().cpu.path;

/** A folder with node alone on it: a PATH with no cmake and no compiler. */
function nodeOnlyPath(): string {
  const binDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-bin-'));
  fs.symlinkSync(process.execPath, path.join(binDir, 'node'));
  return binDir;
}

/**
 * The install script as a dependency runs it: from node_modules/spectral-norm, with `prebuilt` (a file to copy, or
 * bytes) as prebuilds/linux-x64/spectral_norm.node, and PATH without cmake.
 */
function installAsDependency(prebuilt: string | Buffer, env: Record<string, string> = {}) {
  const top = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-consumer-'));
  const binDir = nodeOnlyPath();
  const pkg = path.join(top, 'node_modules', 'spectral-norm');
  try {
    fs.mkdirSync(path.join(pkg, 'scripts'), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'scripts', 'build-native.js'), path.join(pkg, 'scripts', 'build-native.js'));
    const target = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'spectral_norm.node');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (typeof prebuilt === 'string') fs.copyFileSync(prebuilt, target);
    else fs.writeFileSync(target, prebuilt);
    const result = spawnSync(process.execPath, [path.join(pkg, 'scripts', 'build-native.js')], {
      env: { PATH: binDir, ...env },
      encoding: 'utf8',
    });
    return { ...result, files: fs.readdirSync(pkg).sort() };
  } finally {
    fs.rmSync(top, { recursive: true, force: true });
    fs.rmSync(binDir, { recursive: true, force: true });
  }
}

/** Runs `script` in a node whose spectral-norm is a copy of dist/lib with no addon anywhere, as after a failed install. */
function runWithoutAddon(script: string, env: Record<string, string> = {}): string {
  const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-noaddon-'));
  try {
    fs.cpSync(path.join(ROOT, 'dist', 'lib'), path.join(pkg, 'dist', 'lib'), { recursive: true });
    const lib = JSON.stringify(path.join(pkg, 'dist', 'lib'));
    const { SPECTRAL_NORM_BINDING: _binding, SPECTRAL_NORM_DISABLE_NATIVE: _disabled, ...rest } = process.env;
    return execFileSync(process.execPath, ['-e', `const sn = require(${lib});\n${script}`], {
      env: { ...rest, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } finally {
    fs.rmSync(pkg, { recursive: true, force: true });
  }
}

describe('install and loading', () => {
  if (process.env.SN_REQUIRE_NATIVE) {
    it('the native addon loaded (SN_REQUIRE_NATIVE is set, as by CI)', () => {
      const info = backendInfo();
      assert.equal(info.cpu.available, true, `the native CPU backend is missing: ${info.cpu.reason}`);
      assert.equal(info.cpu.compiled, true);
      assert.ok(info.cpu.simd, 'the addon reports no SIMD variant');
    });
  }

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
      assert.match(
        lines[0],
        /^spectral-norm: WARNING: the native addon was not built \(cmake was not found on PATH\); the library will run on its pure-JS backend/,
      );
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
    assert.match(
      report.cpuError,
      /^RangeError: options\.backend 'cpu' is unavailable: the native addon did not load \(SPECTRAL_NORM_DISABLE_NATIVE is set\)/,
    );
  });

  it('an explicit SPECTRAL_NORM_BINDING that does not load is reported with its path, not replaced by another build', () => {
    const script = `console.log(JSON.stringify(require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))}).backendInfo()));`;
    const output = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, SPECTRAL_NORM_BINDING: '/nonexistent/spectral_norm.node' },
      encoding: 'utf8',
    });
    const info = JSON.parse(output);
    assert.deepEqual(info.available, ['js']);
    assert.match(info.cpu.reason, /\/nonexistent\/spectral_norm\.node: not found/);
  });

  it('the first call that falls back to JS emits one warning with its code, the reason and the fix', () => {
    const output = runWithoutAddon(`
      const warnings = [];
      process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
      const w = new Float32Array(64).fill(0.5);
      const backends = [sn.spectralNorm(w, [8, 8]).backend, sn.spectralNorm(w, [8, 8]).backend];
      backends.push(new sn.SpectralNormalizer([8, 8]).backend);
      new sn.SpectralNormBatch([{ shape: [8, 8] }]).step([w]);
      setImmediate(() => console.log(JSON.stringify({ warnings, backends, reason: sn.backendInfo().cpu.reason })));
    `);
    const report = JSON.parse(output);
    assert.deepEqual(report.backends, ['js', 'js', 'js']);
    assert.equal(report.warnings.length, 1, JSON.stringify(report.warnings));
    const [warning] = report.warnings;
    assert.equal(warning.code, WarningCode.JsFallback);
    assert.match(warning.message, /^spectral-norm runs on its pure-JS backend/);
    for (const candidate of ['build/Release', 'build/Debug', `prebuilds/${process.platform}-${process.arch}`]) {
      assert.ok(warning.message.includes(`${candidate}/spectral_norm.node: not found`), `${candidate} is not listed: ${warning.message}`);
    }
    assert.match(warning.message, /run `npm rebuild spectral-norm`/);
    assert.ok(warning.message.endsWith(report.reason), 'backendInfo().cpu.reason says the same as the warning');
  });

  it("no warning when JS was asked for, by backend: 'js' or SPECTRAL_NORM_DISABLE_NATIVE", () => {
    const script = `
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.code));
      sn.spectralNorm(new Float32Array(64).fill(0.5), [8, 8], { backend: process.env.SN_CHOICE });
      setImmediate(() => console.log(JSON.stringify(warnings)));
    `;
    assert.deepEqual(JSON.parse(runWithoutAddon(script, { SN_CHOICE: 'js' })), []);
    assert.deepEqual(JSON.parse(runWithoutAddon(script, { SN_CHOICE: 'auto', SPECTRAL_NORM_DISABLE_NATIVE: '1' })), []);
  });

  describe('the install step as a dependency', function () {
    before(function () {
      if (BUILT_ADDON === null) this.skip();
    });

    it('uses the prebuilt addon when it loads, with no cmake and no compiler, and builds nothing', () => {
      const result = installAsDependency(BUILT_ADDON!);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), 'spectral-norm: using the prebuilt native addon (prebuilds/linux-x64/spectral_norm.node)');
      assert.equal(result.stderr, '');
      assert.deepEqual(result.files, ['prebuilds', 'scripts'], 'no build folder');
    });

    it('builds from source when the prebuilt does not load, and says why both failed and what fixes it', () => {
      const result = installAsDependency(Buffer.alloc(4096, 'not an ELF file '));
      assert.equal(result.status, 0, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(
        lines[0],
        /^spectral-norm: WARNING: the native addon was not built \(the prebuilt prebuilds\/linux-x64\/spectral_norm\.node does not load here \(.*invalid ELF header.*\), and cmake was not found on PATH\)/,
      );
      assert.match(lines[0], /Install cmake and a C\+\+ compiler \(GCC or Clang\), then run `npm rebuild spectral-norm`\.$/);
      assert.deepEqual(result.files, ['prebuilds', 'scripts'], 'nothing half-built is left behind');
    });

    it('builds from source when asked (npm rebuild spectral-norm --build-from-source), even with a prebuilt that loads', () => {
      const asks: Record<string, string>[] = [{ npm_config_build_from_source: 'true' }, { SPECTRAL_NORM_BUILD_FROM_SOURCE: '1' }];
      for (const env of asks) {
        const result = installAsDependency(BUILT_ADDON!, env);
        assert.equal(result.status, 0, result.stderr);
        assert.match(result.stderr, /^spectral-norm: WARNING: the native addon was not built \(cmake was not found on PATH\)/);
      }
    });
  });
});
