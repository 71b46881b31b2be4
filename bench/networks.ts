// The benchmark workloads of bench/networks.json: real networks' SN layers (PyTorch layout, dim 0) and synthetic ones.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Workload {
  name: string;
  shapes: number[][];
}

interface NetworksFile {
  networks: { name: string; layers: { name: string; shape: number[] }[] }[];
  synthetic: { name: string; shape: number[]; count?: number }[];
}

const FILE = path.resolve(__dirname, '..', '..', 'bench', 'networks.json');

export function networks(): Workload[] {
  const file = JSON.parse(fs.readFileSync(FILE, 'utf8')) as NetworksFile;
  return file.networks.map((n) => ({ name: n.name, shapes: n.layers.map((l) => l.shape) }));
}

export function syntheticWorkloads(): Workload[] {
  const file = JSON.parse(fs.readFileSync(FILE, 'utf8')) as NetworksFile;
  return file.synthetic.map((s) => ({ name: s.name, shapes: Array.from({ length: s.count ?? 1 }, () => s.shape) }));
}

export function synthetic(name: string): Workload {
  const found = syntheticWorkloads().find((w) => w.name === name);
  if (!found) throw new Error(`bench/networks.json has no synthetic workload '${name}'`);
  return found;
}

export function elements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A fixed pseudo-random weight (an LCG), the same every run. */
export function fixedWeight(dtype: 'float32' | 'float64', length: number, seed: number): Float32Array | Float64Array {
  const w = dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    w[i] = state / 2 ** 32 - 0.5;
  }
  return w;
}

/** Where a bench writes its results: --out, else $OUT (the GPU bundle's output folder), else bench/results. */
export function resultsDir(out: string | undefined): string {
  const dir = out ?? process.env.OUT ?? path.join('bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
