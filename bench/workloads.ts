// The CPU benchmark's workloads: every network of bench/networks.json (real GAN layer shapes), its synthetic entries,
// and three single layers. A workload is one SN training step on all of its layers: k power iterations, then W/σ into
// a separate output, float32, dim 0 (PyTorch's layout: rows = out channels).
import { elements, fixedWeight, networks, syntheticWorkloads } from './networks';

export interface Workload {
  name: string;
  group: 'network' | 'synthetic' | 'single';
  /** Each layer as the matrix SN sees: [rows, cols] with cols = the product of the other dimensions. */
  matrices: [number, number][];
  /** The weights' own shapes, as the library is given them. */
  shapes: number[][];
  iterations: number;
  /** Elements over all layers. */
  elements: number;
  /** The bytes a fused step must move: (k + 2)·|W| (k sweeps, then read W and write W/σ). */
  bytesMoved: number;
}

const BYTES_PER_ELEMENT = 4;

function workload(name: string, group: Workload['group'], shapes: number[][], iterations: number): Workload {
  const total = shapes.reduce((sum, s) => sum + elements(s), 0);
  return {
    name: `${name} k=${iterations}`,
    group,
    matrices: shapes.map((s): [number, number] => [s[0], elements(s.slice(1))]),
    shapes,
    iterations,
    elements: total,
    bytesMoved: (iterations + 2) * total * BYTES_PER_ELEMENT,
  };
}

/** The full suite, or the quick subset (`--quick`: one network, the server-style batch and the single layers). */
export function loadWorkloads(quick: boolean): Workload[] {
  const list: Workload[] = [];
  for (const net of networks()) {
    if (quick && net.name !== 'sngan-resnet-cifar10-d') continue;
    for (const k of quick ? [1] : [1, 5]) list.push(workload(net.name, 'network', net.shapes, k));
  }
  for (const syn of syntheticWorkloads()) {
    if (quick && syn.name !== 'many-small') continue;
    list.push(workload(syn.name, 'synthetic', syn.shapes, 1));
  }
  for (const [r, c] of [
    [64, 64],
    [512, 4608],
    [1024, 9216],
  ]) {
    for (const k of quick ? [1] : [1, 5]) list.push(workload(`${r}×${c}`, 'single', [[r, c]], k));
  }
  return list;
}

/** Fixed pseudo-random weights, the same every run. */
export function makeWeights(w: Workload): Float32Array[] {
  return w.shapes.map((s, i) => fixedWeight('float32', elements(s), 12345 + i) as Float32Array);
}
