#!/usr/bin/env node
// The install step. Installed as a dependency, the package uses the prebuilt addon it ships for this platform
// (prebuilds/linux-x64, made by `npm pack`) when that loads here; otherwise, or when asked
// (`npm rebuild spectral-norm --build-from-source`, or SPECTRAL_NORM_BUILD_FROM_SOURCE=1), it builds the addon from
// source with cmake-js, in a temporary folder, so that only the .node file stays in node_modules, in place of the
// prebuilt. In this repository's own checkout it always builds from source, into build/. It never fails the install:
// without a prebuilt that fits and without cmake or a C++ compiler, it prints one warning and the library runs on its
// pure-JS backend (which then warns again at run time, where npm does not hide it).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const ADDON = 'spectral_norm.node';
// Installed under some node_modules folder, as opposed to the project's own checkout.
const asDependency = root.split(path.sep).includes('node_modules');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, ADDON);
const retry = asDependency ? '`npm rebuild spectral-norm`' : '`npm run build:native`';

const truthy = (value) => value !== undefined && value !== '' && value !== '0' && value !== 'false';
// npm hands `--build-from-source` to install scripts as npm_config_build_from_source (prebuild-install's flag).
const fromSource =
  truthy(process.env.SPECTRAL_NORM_BUILD_FROM_SOURCE) || ['true', 'spectral-norm'].includes(process.env.npm_config_build_from_source);

function warn(reason, log) {
  const where = log ? ` Build log: ${log}.` : '';
  console.warn(
    `spectral-norm: WARNING: the native addon was not built (${reason}); the library will run on its pure-JS backend.` +
      `${where} Install cmake and a C++ compiler (GCC or Clang), then run ${retry}.`,
  );
}

/** Null when the addon at `file` loads in a fresh node, or the first line of why not. */
function loadError(file) {
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).backendInfo()`], { encoding: 'utf8' });
  if (check.status === 0) return null;
  const text = `${check.stderr ?? ''}${check.error ? String(check.error) : ''}`;
  const line = text.split('\n').find((l) => /Error/.test(l)) ?? `node exited with status ${check.status}`;
  return line.trim().slice(0, 300);
}

/** Builds the addon with cmake-js into `outDir`; returns null on success or the reason and log of a failure. */
function build(outDir, logFile) {
  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (cmake.error || cmake.status !== 0) return { reason: 'cmake was not found on PATH' };
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    return { reason: 'the cmake-js package is missing' };
  }
  fs.mkdirSync(outDir, { recursive: true });
  const result = spawnSync(process.execPath, [cmakeJs, 'build', '--out', outDir, ...process.argv.slice(2)], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.writeFileSync(logFile, `${result.stdout ?? ''}\n${result.stderr ?? ''}\n${result.error ? String(result.error) : ''}`);
  if (result.status === 0) return null;
  const text = `${result.stderr ?? ''}\n${result.stdout ?? ''}`;
  const firstError = text.split('\n').find((line) => /error|not found|No CMAKE_CXX_COMPILER/i.test(line));
  return { reason: firstError ? firstError.trim().slice(0, 200) : `cmake-js exited with status ${result.status}`, log: logFile };
}

function main() {
  if (process.env.SPECTRAL_NORM_SKIP_NATIVE) {
    warn('SPECTRAL_NORM_SKIP_NATIVE is set');
    return;
  }
  let prebuiltFailure = '';
  if (asDependency && !fromSource && fs.existsSync(prebuilt)) {
    const error = loadError(prebuilt);
    if (error === null) {
      console.log(`spectral-norm: using the prebuilt native addon (${path.relative(root, prebuilt)})`);
      return;
    }
    prebuiltFailure = `the prebuilt ${path.relative(root, prebuilt)} does not load here (${error}), and `;
  }

  const release = path.join(root, 'build', 'Release', ADDON);
  if (process.env.SPECTRAL_NORM_BUILD_DIR || !asDependency) {
    // The checkout keeps its build tree, so that the next build is incremental.
    const outDir = process.env.SPECTRAL_NORM_BUILD_DIR ? path.resolve(process.env.SPECTRAL_NORM_BUILD_DIR) : path.join(root, 'build');
    const failure = build(outDir, path.join(outDir, 'native-build.log'));
    if (failure) warn(prebuiltFailure + failure.reason, failure.log);
    else console.log(`spectral-norm: built the native addon (${path.relative(root, path.join(outDir, 'Release', ADDON))})`);
    return;
  }
  // A dependency keeps only the addon: the build tree (CMakeFiles, static libraries) is 13 MB of no use to it.
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spectral-norm-build-'));
  try {
    const failure = build(outDir, path.join(root, 'build', 'native-build.log'));
    if (failure) {
      warn(prebuiltFailure + failure.reason, failure.log);
      return;
    }
    fs.mkdirSync(path.dirname(release), { recursive: true });
    fs.copyFileSync(path.join(outDir, 'Release', ADDON), release);
    fs.rmSync(path.join(root, 'build', 'native-build.log'), { force: true });
    // The build replaces the prebuilt (the loader would try it first anyway), as prebuild-install's builds do.
    fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
    console.log(`spectral-norm: built the native addon from source (${path.relative(root, release)})`);
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
}

main();
