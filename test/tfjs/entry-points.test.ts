// The package's two entry points: the main one never loads TensorFlow.js; 'spectral-norm/tfjs' (the exports map)
// loads it and registers the layer.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

/** Runs a CommonJS script in a fresh process from the package root, where require('spectral-norm') names this package. */
function run(script: string): unknown {
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').at(-1) as string);
}

const TENSORFLOW_MODULES =
  "Object.keys(require.cache).filter((file) => file.includes(`${require('path').sep}@tensorflow${require('path').sep}`))";

describe('entry points', () => {
  it('requiring the main entry loads no @tensorflow module', () => {
    const loaded = run(`
      const sn = require('spectral-norm');
      sn.spectralNorm(new Float32Array([3, 0, 0, 4]), [2, 2]);
      console.log(JSON.stringify({ exports: typeof sn.SpectralNormalizer, tensorflow: ${TENSORFLOW_MODULES} }));
    `);
    assert.deepEqual(loaded, { exports: 'function', tensorflow: [] });
    // The same through the file the exports map names.
    const direct = run(`require(${JSON.stringify(path.join(ROOT, 'dist', 'lib'))}); console.log(JSON.stringify(${TENSORFLOW_MODULES}));`);
    assert.deepEqual(direct, []);
  });

  it("'spectral-norm/tfjs' loads @tensorflow/tfjs and registers SpectralNormalization for tf.loadLayersModel", () => {
    const report = run(`
      const tfjs = require('spectral-norm/tfjs');
      const tf = require('@tensorflow/tfjs');
      const registered = tf.serialization.SerializationMap.getMap().classNameMap.SpectralNormalization;
      console.log(JSON.stringify({
        exports: Object.keys(tfjs).sort(),
        registered: registered !== undefined && registered[0] === tfjs.SpectralNormalization,
        tensorflow: ${TENSORFLOW_MODULES}.length > 0,
      }));
    `);
    assert.deepEqual(report, { exports: ['SpectralNormCallback', 'SpectralNormalization'], registered: true, tensorflow: true });
  });
});
