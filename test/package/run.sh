#!/usr/bin/env bash
# `npm run test:package`: the package as a new user gets it. Packs the tarball (npm pack builds the prebuilt addon),
# checks what it holds, installs it in a temporary consumer project with no compiler and no cmake on PATH, then runs
# the consumer's smoke tests (native CPU backend from the prebuilt, ESM, the CLI, the shipped example, the JS fallback
# and its one warning), rebuilds from source on request, and type-checks the consumer with `tsc --strict` on TypeScript 5.0, 5.9 and 7, without
# @types/node and without skipLibCheck. `test/package/run.sh path/to/spectral-norm-x.y.z.tgz` skips the pack.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
fixtures="$root/test/package/consumer"
work="$(mktemp -d "${TMPDIR:-/tmp}/sn-package-XXXXXX")"
trap 'rm -rf "$work"' EXIT
MAX_INSTALLED_BYTES=$((5 * 1024 * 1024))
fail() { echo "test:package: FAIL: $*" >&2; exit 1; }
step() { echo "test:package: $*"; }

# --- The tarball ----------------------------------------------------------------------------------------------------
if [[ $# -ge 1 ]]; then
  tarball="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
else
  step "npm pack (builds the prebuilt addon)"
  (cd "$root" && npm pack --pack-destination "$work" --silent >/dev/null)
  tarball="$(ls "$work"/spectral-norm-*.tgz)"
fi
tar -tzf "$tarball" > "$work/contents.txt"
grep -qx 'package/prebuilds/linux-x64/spectral_norm.node' "$work/contents.txt" || fail "no prebuilt addon in $tarball"
if grep -E '(CMakeFiles|CMakeCache|\.a$|\.o$|^package/build/|^package/build-|\.tgz$|^package/test/|^package/bench/)' "$work/contents.txt"; then
  fail "the tarball holds build or development files (above)"
fi
step "tarball: $(stat -c %s "$tarball") bytes, $(wc -l < "$work/contents.txt") files"

# --- A consumer with no compiler ------------------------------------------------------------------------------------
# PATH holds node, npm and sh (npm runs scripts with it) alone: no cc, c++, gcc, g++, clang, cmake or nvcc (npm adds
# only node_modules/.bin folders).
bin="$work/bin"
mkdir -p "$bin"
ln -s "$(command -v sh)" "$bin/sh"
ln -s "$(command -v node)" "$bin/node"
ln -s "$(readlink -f "$(command -v npm)")" "$bin/npm"
for tool in cc c++ gcc g++ clang clang++ cmake make nvcc; do
  if PATH="$bin" command -v "$tool" >/dev/null; then fail "$tool is on the consumer's PATH"; fi
done
consumer="$work/consumer"
mkdir -p "$consumer"
cp "$fixtures"/* "$consumer/"
echo '{ "name": "sn-consumer", "version": "1.0.0", "private": true }' > "$consumer/package.json"
step "npm install the tarball with PATH=$bin"
(cd "$consumer" && PATH="$bin" npm install --foreground-scripts --no-audit --no-fund --prefer-offline "$tarball" > "$work/install.log" 2>&1) ||
  { cat "$work/install.log"; fail "npm install failed"; }
grep -q 'spectral-norm: using the prebuilt native addon (prebuilds/linux-x64/spectral_norm.node)' "$work/install.log" ||
  { cat "$work/install.log"; fail "the install did not use the prebuilt addon"; }
installed="$consumer/node_modules/spectral-norm"
[[ ! -e "$installed/build" ]] || fail "the install left a build folder: $(ls "$installed/build")"
# protobufjs (the ONNX reader's runtime dependency) lists @types/node among its dependencies, so npm installs it in
# every consumer. The type-check below must prove that this package's own typings need no Node types: remove it.
if [[ -e "$consumer/node_modules/@types/node" ]]; then
  via=$(cd "$consumer" && npm ls @types/node 2>/dev/null | grep -o 'protobufjs@[0-9.]*' | head -1 || true)
  step "@types/node was installed (through ${via:-a dependency}); removed for the type-check"
  rm -rf "$consumer/node_modules/@types/node"
fi
size=$(du -sb "$installed" | cut -f1)
((size <= MAX_INSTALLED_BYTES)) || fail "node_modules/spectral-norm is $size bytes, over $MAX_INSTALLED_BYTES"
step "installed: node_modules/spectral-norm $size bytes; node_modules in all $(du -sb "$consumer/node_modules" | cut -f1) bytes"

# --- Smoke tests ----------------------------------------------------------------------------------------------------
cd "$consumer"
node() { PATH="$bin" "$bin/node" "$@"; }
find "$installed" -type f | sort > "$work/files-before.txt"
node smoke.cjs
node smoke.mjs
node node_modules/spectral-norm/dist/examples/quickstart.js > "$work/quickstart.log" || { cat "$work/quickstart.log"; fail "the shipped example failed"; }
PATH="$bin" node_modules/.bin/spectral-norm info > "$work/info.log" || { cat "$work/info.log"; fail "spectral-norm info failed"; }
find "$installed" -type f | sort > "$work/files-after.txt"
diff "$work/files-before.txt" "$work/files-after.txt" || fail "running the package wrote into node_modules/spectral-norm (above)"
step "the shipped example and the CLI ran and wrote nothing into the package"
mv "$installed/prebuilds" "$work/prebuilds"
node fallback.cjs
mv "$work/prebuilds" "$installed/prebuilds"

# --- A build from source when asked, with the machine's compilers -----------------------------------------------------
# CPU only (npm_config_cmake_SN_CUDA reaches cmake-js as -DSN_CUDA=OFF) to keep it short; it must leave the addon alone
# in node_modules, in place of the prebuilt.
step "npm rebuild spectral-norm --build-from-source"
npm_config_cmake_SN_CUDA=OFF npm rebuild spectral-norm --build-from-source --foreground-scripts > "$work/rebuild.log" 2>&1 ||
  { cat "$work/rebuild.log"; fail "npm rebuild failed"; }
grep -q 'spectral-norm: built the native addon from source (build/Release/spectral_norm.node)' "$work/rebuild.log" ||
  { cat "$work/rebuild.log"; fail "the rebuild did not build from source"; }
[[ "$(cd "$installed" && find build prebuilds -type f 2>/dev/null)" == "build/Release/spectral_norm.node" ]] ||
  fail "after the build from source the package holds: $(cd "$installed" && find build prebuilds 2>/dev/null | tr '\n' ' ')"
node -e "const i = require('spectral-norm').backendInfo(); if (!i.cpu.available || !i.cpu.path.endsWith('build/Release/spectral_norm.node')) { console.error(i.cpu); process.exit(1); }" ||
  fail "the addon built from source does not load"
size=$(du -sb "$installed" | cut -f1)
((size <= MAX_INSTALLED_BYTES)) || fail "after the build from source node_modules/spectral-norm is $size bytes"
step "built from source: node_modules/spectral-norm $size bytes, the addon alone in build/"

# --- Type-check as a consumer ---------------------------------------------------------------------------------------
# The repository's own TypeScript, plus the oldest 5.x and TypeScript 7 (the native compiler), installed apart from
# the consumer so that nothing of theirs (and no @types) is in its reach.
tools="$work/typescript"
mkdir -p "$tools"
echo '{ "private": true }' > "$tools/package.json"
(cd "$tools" && npm install --no-audit --no-fund --prefer-offline --ignore-scripts ${TS_EXTRA_VERSIONS:-ts-oldest@npm:typescript@5.0.4 ts-7@npm:typescript@7.0.2} > "$work/typescript.log" 2>&1) ||
  { cat "$work/typescript.log"; fail "could not install the TypeScript versions to test"; }
for tsc in "$root/node_modules/typescript/bin/tsc" "$tools"/node_modules/ts-*/bin/tsc; do
  version="$(node "$tsc" --version)"
  node "$tsc" --strict --noEmit index.ts || fail "$version: index.ts (CommonJS, default target) does not type-check"
  node "$tsc" --strict --noEmit --module nodenext --moduleResolution nodenext --target es2022 esm.mts ||
    fail "$version: esm.mts (ES module) does not type-check"
  if [[ "$version" != "Version 5.0."* && "$version" != "Version 5.1."* ]]; then
    node "$tsc" --strict --noEmit --module nodenext --moduleResolution nodenext --target esnext dispose.mts ||
      fail "$version: dispose.mts (using) does not type-check"
  fi
  step "$version: the consumer type-checks (strict, no @types/node, no skipLibCheck)"
done
step "passed"
