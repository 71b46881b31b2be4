// Issue 12's table: does backend 'auto' pick the fastest backend? One SN training step (k = 1, W/σ into a separate
// out, float32) of each workload, timed on each backend and on 'auto' side by side, with each row's best, what 'auto'
// picked, and what the cost model predicted. `npm run bench` runs it with the host columns (cpu, js, auto); a GPU
// benchmark adds gpuColumns() (cuda on host arrays, cuda on device handles). The check: on every row, 'auto' is
// within 10% of the best of the backends it may pick for host arrays.
import { type BackendChoice, type BackendName, SpectralNormBatch } from '../lib';
import { explainAuto } from '../lib/backends';
import type { CostedJob } from '../lib/cost-model';
import { matrixGeometry } from '../lib/layout';
import { stepJob } from '../lib/options';
import type { Runner } from './contenders/contender';
import { elements, fixedWeight, networks, synthetic } from './networks';
import { type SamplingPlan, measure } from './timing';

export interface AutoWorkload {
  name: string;
  shapes: number[][];
}

/** The eight rows of issue 12's table, in its order. */
export function autoTableWorkloads(): AutoWorkload[] {
  const net = (name: string): AutoWorkload => {
    const found = networks().find((n) => n.name === name);
    if (!found) throw new Error(`bench/networks.json has no network '${name}'`);
    return found;
  };
  return [
    net('sngan-resnet-cifar10-d'),
    net('sngan-cnn-cifar10-d'),
    net('biggan-128-d'),
    synthetic('many-small'),
    { name: 'one 64×64×3×3', shapes: [[64, 64, 3, 3]] },
    { name: 'one 8×8', shapes: [[8, 8]] },
    { name: '512×4608', shapes: [[512, 4608]] },
    { name: '8192×8192', shapes: synthetic('large-square-gpu').shapes },
  ];
}

export const AUTO_ITERATIONS = 1;

/** A workload's step as the cost model sees it (dim 0, float32, W/σ written). */
export function autoTableJob(workload: AutoWorkload, threads: number): CostedJob {
  const settings = { iterations: AUTO_ITERATIONS, dtype: 'float32', precision: 'mixed', legacy: false, threads } as const;
  return stepJob(
    settings,
    workload.shapes.map((shape) => matrixGeometry(shape, 0, false)),
  );
}

export interface AutoColumn {
  name: string;
  /** The backend the column runs on ('auto': whichever it picks). */
  backend: BackendChoice;
  /** A backend 'auto' may pick for host arrays: it counts toward the row's best. */
  candidate: boolean;
  prepare(workload: AutoWorkload, weights: Float32Array[]): Runner | string;
}

/** A SpectralNormBatch step on host arrays with `out`, on `backend`. */
function batchColumn(name: string, backend: BackendChoice, candidate: boolean): AutoColumn {
  return {
    name,
    backend,
    candidate,
    prepare(workload, weights) {
      const batch = new SpectralNormBatch(
        workload.shapes.map((shape) => ({ shape })),
        { backend, iterations: AUTO_ITERATIONS, seed: 1 },
      );
      const out = weights.map((w) => new Float32Array(w.length));
      return { run: () => void batch.step(weights, { out }) };
    },
  };
}

/** cpu, js and auto: what a host without a GPU compares. */
export function hostColumns(available: readonly BackendName[]): AutoColumn[] {
  return [
    ...(available.includes('cpu') ? [batchColumn('cpu', 'cpu', true)] : []),
    batchColumn('js', 'js', true),
    batchColumn('auto', 'auto', false),
  ];
}

/**
 * cuda on host arrays (a candidate for 'auto'), and on device handles, divided in place with no host copies: a
 * different job, which 'auto' always gives to cuda, shown beside the others but not counted in the host-array best.
 */
export function gpuColumns(): AutoColumn[] {
  return [
    batchColumn('cuda (host arrays)', 'cuda', true),
    {
      name: 'cuda (device)',
      backend: 'cuda',
      candidate: false,
      prepare(workload, weights) {
        const batch = new SpectralNormBatch(
          workload.shapes.map((shape) => ({ shape })),
          { backend: 'cuda', iterations: AUTO_ITERATIONS, seed: 1 },
        );
        const handle = batch.toDevice(weights);
        return { run: () => void batch.step(handle), dispose: () => handle.dispose() };
      },
    },
  ];
}

export interface AutoTableRow {
  workload: string;
  /** Median ms per step of each column (null: skipped, with the reason in `skipped`). */
  medianMs: Record<string, number | null>;
  skipped: Record<string, string>;
  best: { column: string; backend: BackendChoice; ms: number } | null;
  /** What 'auto' picked for this workload (SpectralNormBatch.backend), and the model's predicted ms per backend. */
  autoPicked: BackendName;
  predictedMs: Partial<Record<BackendName, number>>;
}

/** Times every column on every workload, the columns interleaved (bench/timing.ts). */
export async function measureAutoTable(
  columns: readonly AutoColumn[],
  plan: SamplingPlan,
  threads: number,
  workloads: readonly AutoWorkload[] = autoTableWorkloads(),
  onWorkload: (name: string) => void = () => {},
): Promise<AutoTableRow[]> {
  const rows: AutoTableRow[] = [];
  for (const workload of workloads) {
    onWorkload(workload.name);
    const weights = workload.shapes.map((s, i) => fixedWeight('float32', elements(s), 12345 + i) as Float32Array);
    const prepared: { column: AutoColumn; runner: Runner }[] = [];
    const skipped: Record<string, string> = {};
    for (const column of columns) {
      try {
        const runner = column.prepare(workload, weights);
        if (typeof runner === 'string') skipped[column.name] = runner;
        else prepared.push({ column, runner });
      } catch (error) {
        skipped[column.name] = (error as Error).message;
      }
    }
    const stats = await measure(
      prepared.map((p) => p.runner),
      plan,
      () => {},
    );
    prepared.forEach((p) => p.runner.dispose?.());
    const medianMs: Record<string, number | null> = Object.fromEntries(columns.map((c) => [c.name, null]));
    prepared.forEach((p, i) => (medianMs[p.column.name] = stats[i].medianMs));
    let best: AutoTableRow['best'] = null;
    for (const c of columns) {
      const ms = medianMs[c.name];
      if (c.candidate && ms !== null && (best === null || ms < best.ms)) best = { column: c.name, backend: c.backend, ms };
    }
    const { pick, predicted } = explainAuto(autoTableJob(workload, threads));
    const predictedMs = Object.fromEntries(Object.entries(predicted).map(([b, s]) => [b, s * 1e3]));
    rows.push({ workload: workload.name, medianMs, skipped, best, autoPicked: pick, predictedMs });
  }
  return rows;
}

const ms = (x: number | null | undefined) =>
  x === null || x === undefined ? '-' : x < 0.1 ? x.toFixed(4) : x < 10 ? x.toFixed(3) : x.toFixed(1);

/** 'auto' against the row's best: the ratio of its time to the best's (≤ 1.1 meets the target). */
export function autoRatio(row: AutoTableRow): number | null {
  const auto = row.medianMs.auto;
  return auto === null || auto === undefined || row.best === null ? null : auto / row.best.ms;
}

export function printAutoTable(rows: readonly AutoTableRow[], columns: readonly AutoColumn[]): void {
  console.log(
    `\n'auto' against the best backend (issue 12): median ms per step (k = ${AUTO_ITERATIONS}, W/σ into out, float32); ` +
      'predicted: the cost model, ms',
  );
  console.table(
    Object.fromEntries(
      rows.map((r) => {
        const ratio = autoRatio(r);
        return [
          r.workload,
          {
            ...Object.fromEntries(columns.map((c) => [c.name, ms(r.medianMs[c.name])])),
            best: r.best ? `${r.best.column} ${ms(r.best.ms)}` : '-',
            'auto picked': r.autoPicked,
            'auto / best': ratio === null ? '-' : `${ratio.toFixed(2)}×`,
            predicted: Object.entries(r.predictedMs)
              .map(([b, x]) => `${b} ${ms(x)}`)
              .join(', '),
          },
        ];
      }),
    ),
  );
  for (const r of rows) for (const [c, why] of Object.entries(r.skipped)) console.log(`skipped ${c} on ${r.workload}: ${why}`);
}

export interface AutoTarget {
  target: string;
  measured: string;
  met: boolean | null;
}

/**
 * Met when 'auto' ran within 10% of the row's best, or picked the best's backend: then both columns run the same
 * code, and a gap between them is the machine's noise, which the ratio still shows.
 */
export function autoTargets(rows: readonly AutoTableRow[]): AutoTarget[] {
  return rows.map((r) => {
    const ratio = autoRatio(r);
    const same = r.best !== null && r.best.backend === r.autoPicked;
    return {
      target: `${r.workload}: auto within 10% of the best backend`,
      measured:
        ratio === null
          ? 'not measured here'
          : `auto ${ms(r.medianMs.auto)} ms (picked ${r.autoPicked}${same ? ', the best backend' : ''}), best ${r.best!.column} ${ms(r.best!.ms)} ms: ${ratio.toFixed(2)}×`,
      met: ratio === null ? null : ratio <= 1.1 || same,
    };
  });
}
