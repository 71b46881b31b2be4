// Saving and loading models that use SpectralNormalization: the class is registered on import, getConfig() carries
// the wrapped layer, and u and v are weights, so predictions and u come back bit for bit.
import * as assert from 'node:assert/strict';

import * as tf from '@tensorflow/tfjs';

import { SpectralNormCallback, SpectralNormalization } from '../../lib/tfjs';
import { assertSameBytes, testSeed } from '../support/helpers';
import { describeOnTfBackends } from '../support/tfjs-backends';
import { values, weightValues } from '../support/tfjs-models';

async function saveToMemory(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (saved === undefined) throw new Error('the save handler was not called');
  return saved;
}

function spectralLayers(model: tf.LayersModel): SpectralNormalization[] {
  return model.layers.filter((l): l is SpectralNormalization => l instanceof SpectralNormalization);
}

async function assertRoundTrip(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor): Promise<tf.LayersModel> {
  const artifacts = await saveToMemory(model);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const [before, after] = [spectralLayers(model), spectralLayers(loaded)];
  assert.equal(after.length, before.length);
  before.forEach((layer, i) => {
    const [a, b] = [weightValues(layer), weightValues(after[i])];
    assert.equal(b.length, a.length);
    a.forEach((w, j) => assertSameBytes(b[j], w, `${layer.name} weight ${j}`));
    assert.deepEqual(
      [
        after[i].powerIterations,
        after[i].eps,
        after[i].seed,
        after[i].warmupIterations,
        after[i].normalizeWith,
        after[i].layer.getClassName(),
      ],
      [layer.powerIterations, layer.eps, layer.seed, layer.warmupIterations, layer.normalizeWith, layer.layer.getClassName()],
    );
  });
  assertSameBytes(values(loaded.predict(x) as tf.Tensor), values(model.predict(x) as tf.Tensor), 'predictions');
  // And they train on alike: the same step (SGD has no state to lose) gives the same bits.
  loaded.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  await model.fit(x, y, { batchSize: 4, epochs: 1, shuffle: false, verbose: 0, callbacks: [new SpectralNormCallback()] });
  await loaded.fit(x, y, { batchSize: 4, epochs: 1, shuffle: false, verbose: 0, callbacks: [new SpectralNormCallback()] });
  assertSameBytes(values(loaded.predict(x) as tf.Tensor), values(model.predict(x) as tf.Tensor), 'predictions after a step');
  return loaded;
}

describeOnTfBackends('SpectralNormalization save and load', () => {
  it('a sequential model: tf.io.withSaveHandler, then tf.loadLayersModel(tf.io.fromMemory())', async () => {
    const seed = testSeed() % 100000;
    const model = tf.sequential({
      layers: [
        new SpectralNormalization({
          layer: tf.layers.conv2d({ inputShape: [6, 6, 2], filters: 4, kernelSize: 3 }),
          seed,
          powerIterations: 2,
        }),
        tf.layers.flatten(),
        new SpectralNormalization({
          layer: tf.layers.dense({ units: 3, activation: 'tanh' }),
          eps: 1e-6,
          warmupIterations: 4,
          normalizeWith: 'tf-ops',
        }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    const [x, y] = [tf.randomNormal([8, 6, 6, 2], 0, 1, 'float32', seed), tf.randomNormal([8, 3], 0, 1, 'float32', seed + 1)];
    await model.fit(x, y, { batchSize: 4, epochs: 2, verbose: 0, callbacks: [new SpectralNormCallback()] });
    const artifacts = await saveToMemory(model);
    const topology = JSON.stringify(artifacts.modelTopology);
    // Keras's names: the saved config reads as Keras 3's SpectralNormalization (layer, power_iterations).
    assert.match(topology, /"class_name":"SpectralNormalization","config":\{"layer":\{"class_name":"Conv2D"/);
    assert.match(topology, /"power_iterations":2/);
    await assertRoundTrip(model, x, y);
  });

  it('a functional model', async () => {
    const seed = testSeed() % 100000;
    const input = tf.input({ shape: [5] });
    const hidden = new SpectralNormalization({ layer: tf.layers.dense({ units: 7, activation: 'relu' }), seed }).apply(input);
    const output = new SpectralNormalization({ layer: tf.layers.dense({ units: 2 }), seed: seed + 1 }).apply(hidden);
    const model = tf.model({ inputs: input, outputs: output as tf.SymbolicTensor });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    const [x, y] = [tf.randomNormal([8, 5], 0, 1, 'float32', seed), tf.randomNormal([8, 2], 0, 1, 'float32', seed + 1)];
    await model.fit(x, y, { batchSize: 4, epochs: 1, verbose: 0 });
    await assertRoundTrip(model, x, y);
  });

  it('getConfig() carries the wrapped layer; fromConfig() rebuilds it', () => {
    const layer = new SpectralNormalization({ layer: tf.layers.conv2dTranspose({ filters: 3, kernelSize: 2, name: 'up' }), seed: 5 });
    const config = layer.getConfig();
    assert.deepEqual(config.layer, { className: 'Conv2DTranspose', config: layer.layer.getConfig() });
    assert.deepEqual(
      [config.powerIterations, config.eps, config.seed, config.warmupIterations, config.normalizeWith],
      [1, 1e-12, 5, 15, 'auto'],
    );
    const copy = SpectralNormalization.fromConfig(SpectralNormalization, config);
    assert.ok(copy instanceof SpectralNormalization);
    assert.equal(copy.layer.name, 'up');
    assert.deepEqual(copy.getConfig(), config);
  });
});
