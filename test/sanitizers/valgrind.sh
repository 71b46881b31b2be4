#!/usr/bin/env bash
# `npm run test:valgrind`: the CPU-path suites under valgrind memcheck (apt-get install valgrind). Fails on any invalid
# read or write, use of uninitialised memory, or definite leak outside Node's own allocations; node.supp suppresses
# only leaks whose allocating caller is node itself (V8, libuv, Node's startup). JIT-free V8 (--jitless), so that
# valgrind does not chase generated code, and SN_TEST_BACKENDS=cpu: the JS backend has no native memory.
# Extra arguments go to mocha, e.g. `npm run test:valgrind -- --grep golden`.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v valgrind > /dev/null || { echo "test:valgrind: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
npm run build:ts
# The suites that drive the native code through every path (parity, bad input, non-finite and zero, async, the
# coalescer, allocation failure) without the large reference sweeps, which under valgrind would take an hour. The
# event-loop test is left out: a timing test, and a 1024×9216 layer 40 times over.
suites=(core/pytorch-parity api/bad-input core/nonfinite-and-zero api/async server/coalescer core/allocation-failure)
SN_TEST_BACKENDS=cpu valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --track-origins=yes --suppressions=test/sanitizers/node.supp \
  node --jitless node_modules/mocha/bin/mocha.js --no-config --timeout 0 --reporter dot \
  --grep 'event loop keeps ticking' --invert $(printf "dist/test/%s.test.js " "${suites[@]}") "$@"
