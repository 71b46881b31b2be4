// Bad input to SpectralNormalization and SpectralNormCallback: a clear error each, naming the argument or the layer,
// and nothing modified.
import * as assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs';

import { SpectralNormCallback, SpectralNormalization } from '../../lib/tfjs';
import { assertSameBytes, testSeed } from '../support/helpers';
import { describeOnTfBackends } from '../support/tfjs-backends';
import { weightValues } from '../support/tfjs-models';

function twoLayerModel(seed: number) {
  const first = new SpectralNormalization({ layer: tf.layers.dense({ units: 4, inputShape: [3] }), seed, name: 'sn_first' });
  const second = new SpectralNormalization({ layer: tf.layers.dense({ units: 2 }), seed: seed + 1, name: 'sn_second' });
  const model = tf.sequential({ layers: [first, second] });
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
  return { model, first, second };
}

function snapshot(layers: tf.layers.Layer[]): Float32Array[][] {
  return layers.map(weightValues);
}

function assertUnchanged(layers: tf.layers.Layer[], before: Float32Array[][]): void {
  layers.forEach((layer, i) => weightValues(layer).forEach((w, j) => assertSameBytes(w, before[i][j], `${layer.name} weight ${j}`)));
}

describeOnTfBackends('SpectralNormalization bad input', () => {
  it('wrapping something that is not a layer, or a layer without a kernel: TypeError', () => {
    const construct = (layer: unknown) => () => new SpectralNormalization({ layer } as never);
    assert.throws(construct(undefined), { name: 'TypeError', message: /^layer must be a tf\.layers\.Layer .*got undefined/ });
    assert.throws(construct('dense'), { name: 'TypeError', message: /^layer must be a tf\.layers\.Layer/ });
    assert.throws(() => new SpectralNormalization(undefined as never), { name: 'TypeError', message: /^args must be an object/ });
    for (const layer of [tf.layers.flatten(), tf.layers.dropout({ rate: 0.5 }), tf.layers.batchNormalization()]) {
      assert.throws(construct(layer), {
        name: 'TypeError',
        message: new RegExp(`^layer must have a kernel to normalize \\(dense, .*got ${layer.getClassName()} '${layer.name}'`),
      });
    }
    // A built layer of another class is taken when it has a kernel (a custom layer would), refused when it has none.
    const built = tf.layers.depthwiseConv2d({ kernelSize: 3 });
    built.build([null, 5, 5, 2]);
    assert.throws(construct(built), { name: 'TypeError', message: /^layer must have a kernel/ });
  });

  it('powerIterations below 1, and other bad options: RangeError or TypeError naming the option', () => {
    const dense = () => tf.layers.dense({ units: 2 });
    const bad: [Record<string, unknown>, string, RegExp][] = [
      [{ powerIterations: 0 }, 'RangeError', /^powerIterations must be an integer from 1 to \d+, got 0/],
      [{ powerIterations: -1 }, 'RangeError', /^powerIterations must be an integer from 1/],
      [{ powerIterations: 1.5 }, 'RangeError', /^powerIterations must be an integer from 1/],
      [{ powerIterations: '2' }, 'TypeError', /^powerIterations must be an integer, got string 2/],
      [{ eps: -1 }, 'RangeError', /^eps must be a finite number >= 0, got -1/],
      [{ eps: NaN }, 'RangeError', /^eps must be a finite number >= 0/],
      [{ warmupIterations: -1 }, 'RangeError', /^warmupIterations must be an integer from 0/],
      [{ seed: 0.5 }, 'RangeError', /^seed must be a safe integer/],
      [{ normalizeWith: 'gpu' }, 'RangeError', /^normalizeWith must be 'auto', 'engine' or 'tf-ops', got string gpu/],
    ];
    for (const [options, name, message] of bad) {
      assert.throws(() => new SpectralNormalization({ layer: dense(), ...options }), { name, message }, JSON.stringify(options));
    }
  });

  // With the callback the step's iteration is one engine call for the whole model, refused as a whole. Without it,
  // each layer iterates in its own forward call: the layers before the bad one have run theirs (as PyTorch's would),
  // and the error stops the step before the optimizer changes any weight.
  it('a non-finite kernel: a RangeError naming the layer; its kernel, u and v, and every other weight, as they were', async () => {
    const seed = testSeed() % 100000;
    const [x, y] = [tf.randomNormal([4, 3], 0, 1, 'float32', seed), tf.randomNormal([4, 2], 0, 1, 'float32', seed + 1)];
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const path of ['SpectralNormCallback in model.fit', 'trainOnBatch']) {
        const { model, first, second } = twoLayerModel(seed);
        const kernel = second.layer.getWeights()[0];
        const poisoned = kernel.dataSync().slice();
        poisoned[3] = bad;
        second.layer.setWeights([tf.tensor(poisoned, kernel.shape), second.layer.getWeights()[1]]);
        const before = snapshot([first, second]);
        const message =
          /^kernel of SpectralNormalization 'sn_second' contains NaN or Infinity \(at index 3\); its kernel, u and v were not modified/;
        const train =
          path === 'trainOnBatch'
            ? () => model.trainOnBatch(x, y)
            : () => model.fit(x, y, { batchSize: 4, epochs: 1, verbose: 0, callbacks: [new SpectralNormCallback()] });
        await assert.rejects(train, { name: 'RangeError', message }, `${bad}, ${path}`);
        if (path === 'trainOnBatch') {
          assertUnchanged([first.layer, second], [before[0].slice(0, 2), before[1]]);
        } else {
          assertUnchanged([first, second], before);
        }
        // The model still works once the kernel is repaired.
        poisoned[3] = 0.5;
        second.layer.setWeights([tf.tensor(poisoned, kernel.shape), second.layer.getWeights()[1]]);
        await train();
      }
    }
  });

  it('an unbuilt layer: a clear error from what needs its kernel', () => {
    const sn = new SpectralNormalization({ layer: tf.layers.dense({ units: 3 }), name: 'sn_unbuilt' });
    const notBuilt = (what: string) => ({
      message: new RegExp(
        `^SpectralNormalization 'sn_unbuilt' is not built yet, so ${what} has no kernel: call it on an input, or give the wrapped layer an inputShape, first`,
      ),
    });
    assert.throws(() => sn.normalizedKernel(), notBuilt('normalizedKernel'));
    assert.throws(() => sn.call(tf.ones([2, 4]), { training: true }), notBuilt('call'));
    // tfjs models build their layers before training; a container that did not is refused by name.
    const callback = new SpectralNormCallback();
    callback.setModel({ layers: [sn] } as never);
    assert.throws(() => callback.powerIteration(), notBuilt('a power iteration'));
    assert.equal(sn.built, false);
    // Built by a first call (apply), it works.
    sn.apply(tf.ones([2, 4]));
    callback.powerIteration();
  });

  it('SpectralNormCallback: no model, unknown options', () => {
    assert.throws(() => new SpectralNormCallback().powerIteration(), { message: /^SpectralNormCallback has no model/ });
    assert.throws(() => new SpectralNormCallback({ thread: 2 } as never), {
      name: 'TypeError',
      message: /^options\.thread is not a known option/,
    });
    assert.throws(() => new SpectralNormCallback({ backend: 'gpu' } as never), {
      name: 'RangeError',
      message: /^options\.backend must be 'auto', 'cuda', 'cpu' or 'js', got string gpu/,
    });
    assert.throws(() => new SpectralNormCallback({ threads: 0 }), {
      name: 'RangeError',
      message: /^options\.threads must be an integer from 1/,
    });
  });
});
