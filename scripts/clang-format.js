#!/usr/bin/env node
// `npm run lint:native` checks the native sources against .clang-format; `npm run format` (which passes --fix)
// rewrites them. clang-format comes from the system (Debian: `apt-get install clang-format`).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const SOURCE = /\.(h|cc|cpp|cu|cuh)$/;
const files = fs
  .readdirSync(path.join(root, 'native'), { recursive: true })
  .filter((file) => SOURCE.test(file))
  .map((file) => path.join('native', file))
  .sort();
const args = process.argv.includes('--fix') ? ['-i'] : ['--dry-run', '--Werror'];
const result = spawnSync('clang-format', [...args, ...files], { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(`clang-format could not run (${result.error.message}); on Debian: apt-get install clang-format`);
  process.exit(1);
}
process.exit(result.status ?? 1);
