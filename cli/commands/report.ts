// spectral-norm report <model>: σ of every selected tensor, one row each, then totals.
import { backendInfo } from '../../lib';
import { type BoundsOptions, type Columns, boundsColumns } from '../bounds';
import { openModel } from '../open-model';
import { progressBar } from '../progress';
import { type SelectionOptions, selectTensors } from '../selection';
import { type ComputeOptions, sigmaOf } from '../sigma';
import { LIPSCHITZ_LABEL, formatMs, formatSigma, formatTable, sigmaProduct } from '../table';

export interface ReportOptions extends SelectionOptions, ComputeOptions, BoundsOptions {
  json: boolean;
}

export interface ReportRow {
  name: string;
  shape: number[];
  dtype: string;
  dim: number;
  sigma: number;
  iterations: number | null;
  converged: boolean | null;
  ms: number;
  /** --conv-input: the 4-D tensor as a convolution on that input (cli/bounds.ts). --certify: certified [lower, upper]. */
  operator?: Columns['operator'];
  certified?: Columns['certified'];
}

export interface ReportJson {
  file: string;
  format: 'safetensors' | 'tfjs';
  method: 'power-iteration' | 'exact';
  backend: string;
  tolerance: number | null;
  tensors: ReportRow[];
  /** Tensors in the file that were not reported (not selected, not floating point, or fewer than 2 dims). */
  skipped: string[];
  totals: {
    tensors: number;
    /** σ computation time, summed over tensors. */
    ms: number;
    /** Everything, reading included. */
    wallMs: number;
    sigmaProduct: number;
    sigmaProductLog10: number;
    sigmaProductMeaning: string;
  };
}

export async function report(file: string, options: ReportOptions, out: (text: string) => void): Promise<ReportJson> {
  const wallStart = performance.now();
  const model = await openModel(file);
  const rows: ReportRow[] = [];
  const backends = new Set<string>();
  const progress = progressBar();
  try {
    const selected = selectTensors(model, options);
    progress.start(selected.length);
    for (const { tensor, dim } of selected) {
      const values = await model.read(tensor);
      const r = await sigmaOf(file, tensor.name, values, tensor.shape, dim, options);
      backends.add(r.backend);
      const columns = boundsColumns(file, tensor.name, values, tensor.shape, dim, model.format, options, options);
      rows.push({ name: tensor.name, shape: tensor.shape, dtype: tensor.dtype, dim, sigma: r.sigma, iterations: r.iterations, converged: r.converged, ms: r.ms, ...columns });
      progress.tick(tensor.name);
    }
  } finally {
    progress.stop();
    await model.close();
  }
  const reported = new Set(rows.map((r) => r.name));
  const product = sigmaProduct(rows.map((r) => r.sigma));
  const result: ReportJson = {
    file,
    format: model.format,
    method: options.exact ? 'exact' : 'power-iteration',
    backend: backends.size > 0 ? [...backends].join(',') : options.exact ? 'exact' : String(options.backend),
    tolerance: options.exact ? null : options.tolerance,
    tensors: rows,
    skipped: model.tensors.filter((t) => !reported.has(t.name)).map((t) => t.name),
    totals: {
      tensors: rows.length,
      ms: rows.reduce((sum, r) => sum + r.ms, 0),
      wallMs: performance.now() - wallStart,
      sigmaProduct: product.value,
      sigmaProductLog10: product.log10,
      sigmaProductMeaning: LIPSCHITZ_LABEL,
    },
  };
  out(options.json ? JSON.stringify(result, null, 2) : formatReport(result, product.text, options));
  return result;
}

function methodLine(r: ReportJson): string {
  if (r.method === 'exact') return 'σ by exactSpectralNorm (float64 Lanczos, relative error ≤ 1e-10)';
  const info = backendInfo();
  const cpu = r.backend === 'cpu' ? ` (${info.cpu.simd}, ${info.cpu.threads} threads by default)` : '';
  return `σ by power iteration to a relative tolerance of ${(r.tolerance as number).toExponential()} on the ${r.backend} backend${cpu}`;
}

function formatReport(r: ReportJson, productText: string, options: BoundsOptions): string {
  const extra = boundsTable(r.tensors, options);
  const table = formatTable(
    ['tensor', 'shape', 'dtype', 'dim', 'σ', 'iters', 'ms', ...extra.header],
    r.tensors.map((t, i) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      t.dtype,
      String(t.dim),
      formatSigma(t.sigma),
      t.iterations === null ? '-' : `${t.iterations}${t.converged ? '' : '*'}`,
      formatMs(t.ms),
      ...extra.rows[i],
    ]),
    [false, false, false, true, true, true, true, ...extra.header.map(() => true)],
  );
  const lines = [`${r.file} (${r.format}): ${methodLine(r)}`, ...extra.notes, '', table, ''];
  if (r.tensors.some((t) => t.converged === false)) lines.push('* did not converge within --max-iterations: σ is an estimate from below');
  lines.push(
    `${r.totals.tensors} tensors reported, ${r.skipped.length} skipped; σ time ${formatMs(r.totals.ms)} ms, total ${formatMs(r.totals.wallMs)} ms`,
    `${LIPSCHITZ_LABEL}: ${productText}`,
  );
  return lines.join('\n');
}

/** The --conv-input and --certify columns of the table, and the lines that say what they are. */
function boundsTable(rows: ReportRow[], options: BoundsOptions): { header: string[]; rows: string[][]; notes: string[] } {
  const header: string[] = [];
  const notes: string[] = [];
  if (options.convInput) {
    header.push('operator σ', '≤ (certified)');
    const [h, w] = options.convInput;
    notes.push(
      `operator σ: each 4-D tensor as a convolution on a ${h}×${w} input (stride ${options.stride ?? 1}, padding ${options.padding ?? 0}, ` +
        `${options.paddingMode ?? 'zeros'}), its largest singular value and a certified upper bound (docs/conv.md)`,
    );
  }
  if (options.certify) {
    header.push('certified [lower, upper]');
    notes.push('certified [lower, upper]: bounds on the matrix σ with rounding accounted for');
  }
  const cells = rows.map((t) => {
    const row: string[] = [];
    if (options.convInput) {
      const op = t.operator;
      row.push(op?.sigma === undefined ? '-' : formatSigma(op.sigma), op?.upper === undefined ? '-' : formatSigma(op.upper));
    }
    if (options.certify) row.push(t.certified ? `[${formatSigma(t.certified.lower)}, ${formatSigma(t.certified.upper)}]` : '-');
    return row;
  });
  for (const t of rows) if (t.operator?.error) notes.push(`${t.name}: no operator σ: ${t.operator.error}`);
  return { header, rows: cells, notes };
}
