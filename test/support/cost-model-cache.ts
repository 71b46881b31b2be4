// Loaded by mocha before the test files (.mocharc.json "require"). The suite's 'auto' calls measure the cost model's
// constants and write them to a cache file: this keeps that file out of the user's cache folder, in a folder of this
// run's own (inherited by the child processes tests start), removed at the end. Set at load time, not in a hook: test
// files call backendInfo() while they load, and that measures.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

let made: string | null = null;
if (process.env.SPECTRAL_NORM_CACHE_DIR === undefined) {
  made = fs.mkdtempSync(path.join(os.tmpdir(), 'sn-test-cost-model-'));
  process.env.SPECTRAL_NORM_CACHE_DIR = made;
}

export const mochaHooks = {
  afterAll(): void {
    if (made) fs.rmSync(made, { recursive: true, force: true });
  },
};
