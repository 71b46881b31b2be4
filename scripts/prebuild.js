#!/usr/bin/env node
// `npm pack` (prepack): builds the prebuilt addon the package ships, prebuilds/linux-x64/spectral_norm.node, with the
// normal build (CPU kernels for every instruction set, chosen at run time, and the CUDA backend with static cudart)
// into build-prebuilt/, strips it, checks that it loads, and checks the glibc and libstdc++ versions it needs against
// the ones docs/development.md promises, so that the promise cannot go stale. The install step uses it where it
// loads and builds from source elsewhere (scripts/build-native.js).
//
// SPECTRAL_NORM_PREBUILT_CUDA=AUTO or OFF packs without CUDA where there is no nvcc (the default, ON, requires it).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const ADDON = 'spectral_norm.node';
// The newest symbol versions the prebuilt may need: glibc 2.34 (pthread and dl symbols moved into libc there) and
// the libstdc++ of GCC 12 (std::condition_variable::wait), as a Debian 12 build gives. docs/development.md lists them.
// (Linking libstdc++ and libgcc statically would drop the GLIBCXX need but raise the glibc one to 2.36: the static
// libstdc++ calls arc4random, the static unwinder _dl_find_object.)
const MAX_VERSIONS = { GLIBC: '2.34', GLIBCXX: '3.4.30', CXXABI: '1.3.13' };

function fail(message) {
  console.error(`prebuild: ${message}`);
  process.exit(1);
}

const compare = (a, b) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/** The newest version of each versioned library the ELF file needs, from objdump's dynamic symbol table. */
function neededVersions(file) {
  const table = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const newest = {};
  for (const [, library, version] of table.matchAll(/\((GLIBC|GLIBCXX|CXXABI)_([0-9.]+)\)/g)) {
    if (!newest[library] || compare(version, newest[library]) > 0) newest[library] = version;
  }
  return newest;
}

const glibc = process.report?.getReport().header.glibcVersionRuntime;
if (process.platform !== 'linux' || process.arch !== 'x64' || !glibc) {
  fail(`the prebuilt addon is made on linux-x64 with glibc; this is ${process.platform}-${process.arch}${glibc ? '' : ' without glibc'}`);
}

const cuda = process.env.SPECTRAL_NORM_PREBUILT_CUDA || 'ON';
const outDir = path.join(root, 'build-prebuilt');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
console.log(`prebuild: building the addon (SN_CUDA=${cuda}) in ${path.relative(root, outDir)}/`);
fs.mkdirSync(outDir, { recursive: true });
const log = path.join(outDir, 'prebuild.log');
fs.writeFileSync(log, '');
// Configured every time (`cmake-js build` alone keeps an existing configuration and its options); ninja then
// rebuilds only what the options changed.
for (const command of ['configure', 'build']) {
  const options = command === 'configure' ? [`--CDSN_CUDA=${cuda}`] : [];
  const result = spawnSync(process.execPath, [cmakeJs, command, '--out', outDir, ...options], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  fs.appendFileSync(log, `${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  if (result.status !== 0) fail(`cmake-js ${command} failed (status ${result.status}); its output is in ${path.relative(root, log)}`);
}

const target = path.join(root, 'prebuilds', 'linux-x64', ADDON);
fs.rmSync(path.dirname(target), { recursive: true, force: true });
fs.mkdirSync(path.dirname(target), { recursive: true });
execFileSync('strip', ['--strip-unneeded', '-o', target, path.join(outDir, 'Release', ADDON)]);

// It must load, with the backends this pack promises.
const check = spawnSync(process.execPath, ['-p', `JSON.stringify(require(${JSON.stringify(target)}).backendInfo())`], { encoding: 'utf8' });
if (check.status !== 0) fail(`${path.relative(root, target)} does not load: ${check.stderr.trim()}`);
const info = JSON.parse(check.stdout);
if (!info.cpu.compiled) fail('the prebuilt has no CPU backend');
if (cuda === 'ON' && !info.cuda.compiled) fail('the prebuilt was built with SN_CUDA=ON but has no CUDA backend');

const needed = neededVersions(target);
for (const [library, max] of Object.entries(MAX_VERSIONS)) {
  if (needed[library] && compare(needed[library], max) > 0) {
    fail(
      `${path.relative(root, target)} needs ${library}_${needed[library]}, newer than the ${library}_${max} docs/development.md promises`,
    );
  }
}
const needs = Object.entries(needed)
  .map(([library, version]) => `${library}_${version}`)
  .join(', ');
console.log(
  `prebuild: ${path.relative(root, target)}: ${fs.statSync(target).size} bytes; CPU (${info.cpu.simd} here) and ` +
    `${info.cuda.compiled ? `CUDA (runtime ${info.cuda.runtimeVersion})` : 'no CUDA'}; needs ${needs}; Node-API 8`,
);
