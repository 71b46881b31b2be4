// `npm start`: writes the example models, runs `spectral-norm report` on the SNGAN discriminator with the best
// backend this machine has, then times the pure-JS backend on the same model for comparison.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import type { ReportJson } from '../cli/commands/report';
import { writeExampleModels } from './make-example-models';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');
const { safetensors } = writeExampleModels();
const model = path.relative(process.cwd(), safetensors);

console.log(`$ spectral-norm report ${model}`);
execFileSync(process.execPath, [CLI, 'report', model], { stdio: 'inherit' });

const timed = (backend: string) =>
  JSON.parse(execFileSync(process.execPath, [CLI, 'report', model, '--backend', backend, '--json'], { encoding: 'utf8' })) as ReportJson;
const best = timed('auto');
if (best.backend !== 'js') {
  const js = timed('js');
  const ratio = js.totals.ms / best.totals.ms;
  console.log(
    `\nThe same ${js.totals.tensors} tensors on the pure-JS backend: σ time ${js.totals.ms.toFixed(1)} ms, ` +
      `against ${best.totals.ms.toFixed(1)} ms on ${best.backend} (${ratio.toFixed(1)}× slower; one run each, so noisy).`,
  );
} else {
  console.log('\nThe native addon is not built here, so the run above was the pure-JS backend.');
}
