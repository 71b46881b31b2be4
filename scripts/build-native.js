#!/usr/bin/env node
// The install step: builds the native addon with cmake-js. It never fails the install. Without cmake or a C++
// compiler it prints one warning and the library runs on its pure-JS backend; `npm run build:native` shows the
// whole build output when you want to fix that.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = process.env.SPECTRAL_NORM_BUILD_DIR ? path.resolve(process.env.SPECTRAL_NORM_BUILD_DIR) : path.join(root, 'build');

function warn(reason, log) {
  const where = log ? ` Build log: ${log}.` : '';
  console.warn(
    `spectral-norm: WARNING: the native addon was not built (${reason}); the library will run on its pure-JS backend.` +
      `${where} Run \`npm run build:native\` to retry.`,
  );
}

function main() {
  if (process.env.SPECTRAL_NORM_SKIP_NATIVE) {
    warn('SPECTRAL_NORM_SKIP_NATIVE is set');
    return;
  }
  const cmake = spawnSync('cmake', ['--version'], { encoding: 'utf8' });
  if (cmake.error || cmake.status !== 0) {
    warn('cmake was not found on PATH');
    return;
  }
  let cmakeJs;
  try {
    cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    warn('the cmake-js package is missing');
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  const log = path.join(outDir, 'native-build.log');
  const result = spawnSync(process.execPath, [cmakeJs, 'build', '--out', outDir, ...process.argv.slice(2)], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  fs.writeFileSync(log, `${result.stdout ?? ''}\n${result.stderr ?? ''}\n${result.error ? String(result.error) : ''}`);
  if (result.status === 0) {
    console.log(`spectral-norm: built the native addon (${path.relative(root, path.join(outDir, 'Release', 'spectral_norm.node'))})`);
    return;
  }
  const text = `${result.stderr ?? ''}\n${result.stdout ?? ''}`;
  const firstError = text.split('\n').find((line) => /error|not found|No CMAKE_CXX_COMPILER/i.test(line));
  warn(firstError ? firstError.trim().slice(0, 200) : `cmake-js exited with status ${result.status}`, log);
}

main();
