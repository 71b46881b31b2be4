// docs/tfjs.md's example runs: its first `js` block, as an ES module inside this package, where
// 'spectral-norm/tfjs' resolves through the package's own exports map.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

describe('docs/tfjs.md', () => {
  it('the GAN discriminator example runs, with σ(W/σ) ≈ 1 and identical predictions after a reload', function () {
    this.timeout(300000);
    const page = fs.readFileSync(path.join(ROOT, 'docs', 'tfjs.md'), 'utf8');
    const block = /```js\n([\s\S]*?)```/.exec(page);
    assert.ok(block, 'docs/tfjs.md has a js block');
    const file = path.join(__dirname, 'docs-example.mjs');
    fs.writeFileSync(file, block[1]);
    try {
      const output = execFileSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8' });
      const sigmas = [...output.matchAll(/: σ\(W\/σ\) = ([\d.]+)/g)].map((m) => Number(m[1]));
      assert.equal(sigmas.length, 3, output);
      // Two steps after 15 warm-up iterations on fresh kernels: close to 1, not yet at 1e-3 (see the page).
      for (const sigma of sigmas) assert.ok(Math.abs(sigma - 1) < 0.1, output);
      assert.match(output, /reloaded: identical predictions/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
