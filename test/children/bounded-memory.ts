// Child process for the bounded-memory test: runs `report` (or `normalize`) on a model and prints, as JSON, the
// resident memory before and the peak after (process.resourceUsage().maxRSS), so the parent's own memory is not
// counted. Usage: node bounded-memory.js report|normalize <model> [<output>]
import { normalize } from '../../cli/commands/normalize';
import { report } from '../../cli/commands/report';

async function main() {
  const [command, model, output] = process.argv.slice(2);
  const options = { include: [], exclude: [], dims: [], backend: 'cpu' as const, tolerance: 1e-6, maxIterations: 2, json: true };
  const before = process.memoryUsage().rss;
  const quiet = () => undefined;
  const result =
    command === 'report'
      ? await report(model, { ...options, exact: false }, quiet)
      : await normalize(model, { ...options, output, inPlace: false, target: 1, clip: false }, quiet, quiet);
  console.log(JSON.stringify({ before, peak: process.resourceUsage().maxRSS * 1024, tensors: result.tensors.length }));
}

void main();
