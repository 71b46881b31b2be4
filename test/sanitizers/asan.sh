#!/usr/bin/env bash
# `npm run test:asan`: the whole mocha suite against the AddressSanitizer + UndefinedBehaviorSanitizer build of the
# addon (`npm run build:asan` makes it, in build-asan/). node itself is not instrumented, so the sanitizer runtimes
# are preloaded. Leak checking is off here (node leaves its own allocations at exit); valgrind covers leaks. The one
# timing test (event-loop delay) is left out: instrumented code is several times slower, which is no memory error.
set -euo pipefail
cd "$(dirname "$0")/../.."
addon="$PWD/build-asan/Release/spectral_norm.node"
if [ ! -f "$addon" ]; then
  echo "test:asan: $addon is missing; run npm run build:asan first" >&2
  exit 1
fi
npm run build:ts
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87" \
SPECTRAL_NORM_BINDING="$addon" \
  node node_modules/mocha/bin/mocha.js --grep 'p99 delay' --invert "$@"
