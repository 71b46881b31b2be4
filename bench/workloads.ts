// The benchmark's workloads: every network of bench/networks.json (a copy of the shared list of real GAN layer shapes),
// its synthetic entries, and three single layers. A workload is one SN training step on all of its layers: k power
// iterations, then W/σ into a separate output, float32, dim 0 (PyTorch's layout: rows = out channels).
import * as fs from 'node:fs';
import * as path from 'node:path';

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

interface NetworksFile {
  networks: { name: string; layers: { name: string; shape: number[] }[] }[];
  synthetic: { name: string; shape: number[]; count?: number }[];
}

const BYTES_PER_ELEMENT = 4;

function workload(name: string, group: Workload['group'], shapes: number[][], iterations: number): Workload {
  const matrices = shapes.map((s): [number, number] => [s[0], s.slice(1).reduce((a, b) => a * b, 1)]);
  const elements = matrices.reduce((sum, [r, c]) => sum + r * c, 0);
  return {
    name: `${name} k=${iterations}`,
    group,
    matrices,
    shapes,
    iterations,
    elements,
    bytesMoved: (iterations + 2) * elements * BYTES_PER_ELEMENT,
  };
}

/** The full suite, or the quick subset (`--quick`: one network, the server-style batch and the single layers). */
export function loadWorkloads(quick: boolean): Workload[] {
  const file = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'networks.json'), 'utf8')) as NetworksFile;
  const list: Workload[] = [];
  for (const net of file.networks) {
    if (quick && net.name !== 'sngan-resnet-cifar10-d') continue;
    for (const k of quick ? [1] : [1, 5]) list.push(workload(net.name, 'network', net.layers.map((l) => l.shape), k));
  }
  for (const syn of file.synthetic) {
    if (quick && syn.name !== 'many-small') continue;
    list.push(workload(syn.name, 'synthetic', Array.from({ length: syn.count ?? 1 }, () => syn.shape), 1));
  }
  for (const [r, c] of [[64, 64], [512, 4608], [1024, 9216]]) {
    for (const k of quick ? [1] : [1, 5]) list.push(workload(`${r}×${c}`, 'single', [[r, c]], k));
  }
  return list;
}

/** Fixed pseudo-random weights (an LCG, the same every run), scaled like a He-initialised layer. */
export function makeWeights(w: Workload): Float32Array[] {
  let state = 12345;
  return w.matrices.map(([rows, cols]) => {
    const a = new Float32Array(rows * cols);
    const scale = Math.sqrt(6 / cols);
    for (let i = 0; i < a.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      a[i] = (state / 2 ** 32 - 0.5) * 2 * scale;
    }
    return a;
  });
}
