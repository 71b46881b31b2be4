// SpectralNormCallback: one SpectralNormBatch call per training step for every SpectralNormalization layer of a
// model, before the step's forward pass, instead of one engine call per layer inside it.
import * as tf from '@tensorflow/tfjs';

import { SpectralNormBatch } from '../batch';
import { type CommonOptions, checkRuntimeOptions } from '../options';
import { KERAS_LAYOUT, sameValues } from './kernel';
import { type EngineInput, SpectralNormalization } from './layer';

type Container = Parameters<tf.CustomCallback['setModel']>[0];
type Logs = Parameters<tf.CustomCallback['onBatchBegin']>[1];

/** Where the batched engine call runs: `backend` ('auto' by default), `threads`, `device`, as for SpectralNormBatch. */
export type SpectralNormCallbackOptions = Pick<CommonOptions, 'backend' | 'threads' | 'device'>;

/** Layers that share powerIterations and eps run in one batch; u and v persist in it from step to step. */
interface Group {
  layers: SpectralNormalization[];
  batch: SpectralNormBatch;
}

/**
 * Pass it to model.fit({ callbacks }) (or fitDataset): at the start of every batch it runs the power iteration of every
 * SpectralNormalization layer of the model in one engine call and stores u and v, and the step's forward pass then
 * uses them without iterating again. The order is PyTorch's: u and v are updated from the current W (the one the
 * previous step's optimizer left) before W/σ is used. In a custom loop, call powerIteration() before each step.
 */
export class SpectralNormCallback extends tf.CustomCallback {
  private target: Container | null = null;
  private readonly groups = new Map<string, Group>();
  private readonly engineOptions: SpectralNormCallbackOptions;

  /** `options`: where the batched engine call runs. Throws a TypeError or RangeError that names the option. */
  constructor(options: SpectralNormCallbackOptions = {}) {
    // 'never': this callback has no onYield and must not make fit() wait for a frame.
    super({}, 'never');
    this.engineOptions = checkRuntimeOptions(options);
  }

  /** Attaches the model whose SpectralNormalization layers it steps (model.fit does this), forgetting any other. */
  override setModel(model: Container): void {
    super.setModel(model);
    this.target = model;
    this.groups.clear();
  }

  /** Runs powerIteration(), before the batch's forward pass. */
  override async onBatchBegin(batch: number, logs?: Logs): Promise<void> {
    await super.onBatchBegin(batch, logs);
    this.powerIteration();
  }

  /** The step is over: training calls from now on run their own iteration again, until the next batch begins. */
  override async onBatchEnd(batch: number, logs?: Logs): Promise<void> {
    this.forgetIterations();
    await super.onBatchEnd(batch, logs);
  }

  /** As onBatchEnd: training calls after fit() run their own iteration. */
  override async onTrainEnd(logs?: Logs): Promise<void> {
    this.forgetIterations();
    await super.onTrainEnd(logs);
  }

  /**
   * One training step's power iteration for every SpectralNormalization layer of the model, with each layer's W/σ:
   * one SpectralNormBatch call per distinct (powerIterations, eps). A NaN or ±Infinity in any kernel throws a RangeError that names the
   * layer, and leaves every kernel, u and v as it was.
   */
  powerIteration(): void {
    if (this.target === null) {
      throw new Error('SpectralNormCallback has no model: pass it to model.fit({ callbacks }), or call setModel(model) first');
    }
    const runs: { group: Group; outs: Float32Array[]; sigmas: Float64Array }[] = [];
    for (const [key, layers] of groupLayers(spectralLayers(this.target.layers))) {
      const inputs = layers.map((layer) => layer.engineInput());
      const group = this.groupFor(key, layers, inputs);
      // The iterations and W/σ of every layer of the group in one call (W/σ is what the layers compute with).
      const outs = inputs.map((input) => new Float32Array(input.kernel.length));
      let sigmas: Float64Array;
      try {
        sigmas = group.batch.step(
          inputs.map((input) => input.kernel),
          { out: outs },
        );
      } catch (error) {
        throw explain(error, layers, inputs);
      }
      runs.push({ group, outs, sigmas });
    }
    // Only once every group has run: a refusal above leaves the weights as they were. (A group that ran before it
    // holds newer u and v than the weights; groupFor() notices and starts it again from the weights.)
    for (const { group, outs, sigmas } of runs) {
      group.layers.forEach((layer, i) =>
        layer.acceptIteration({
          values: outs[i],
          sigma: sigmas[i],
          u: group.batch.u(i) as Float32Array,
          v: group.batch.v(i) as Float32Array,
        }),
      );
    }
  }

  private forgetIterations(): void {
    if (this.target !== null) for (const layer of spectralLayers(this.target.layers)) layer.forgetIteration();
  }

  /** The group's batch, made again from the layers' weights when they changed since its last call (set, loaded). */
  private groupFor(key: string, layers: SpectralNormalization[], inputs: EngineInput[]): Group {
    const cached = this.groups.get(key);
    const current =
      cached !== undefined &&
      cached.layers.length === layers.length &&
      cached.layers.every((layer, i) => layer === layers[i] && sameValues(cached.batch.u(i), inputs[i].u));
    if (current) return cached;
    const specs = layers.map((layer, i) => ({ shape: inputs[i].shape, dim: KERAS_LAYOUT.dim, u: inputs[i].u, name: layer.name }));
    const options = { legacy: KERAS_LAYOUT.legacy, iterations: layers[0].powerIterations, eps: layers[0].eps, ...this.engineOptions };
    const batch = new SpectralNormBatch(specs, options);
    const group = { layers, batch };
    this.groups.set(key, group);
    return group;
  }
}

/** Every SpectralNormalization layer of a model, nested models included, each once. */
function spectralLayers(layers: readonly tf.layers.Layer[], found = new Set<SpectralNormalization>()): SpectralNormalization[] {
  for (const layer of layers) {
    if (layer instanceof SpectralNormalization) found.add(layer);
    else if (layer instanceof tf.LayersModel) spectralLayers(layer.layers, found);
  }
  return [...found];
}

function groupLayers(layers: SpectralNormalization[]): Map<string, SpectralNormalization[]> {
  const groups = new Map<string, SpectralNormalization[]>();
  for (const layer of layers) {
    const key = `${layer.powerIterations}/${layer.eps}`;
    groups.set(key, [...(groups.get(key) ?? []), layer]);
  }
  return groups;
}

/** The engine refused a non-finite kernel: name the layer rather than the batch's weights[i]. */
function explain(error: unknown, layers: SpectralNormalization[], inputs: EngineInput[]): unknown {
  if (!(error instanceof RangeError) || !/NaN or Infinity/.test(error.message)) return error;
  const bad = inputs.findIndex((input) => input.kernel.some((x) => !Number.isFinite(x)));
  // No NaN or Infinity in any kernel: an overflow, which the engine's message names by layer already.
  return bad < 0 ? error : layers[bad].nonFiniteKernel(error);
}
