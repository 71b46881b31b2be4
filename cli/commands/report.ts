// spectral-norm report <model>: σ of every selected tensor, one row each, then totals. A tensor with NaN or ±Inf is
// a marked row (the command then exits 1); a selected tensor of an unsupported dtype is a skipped row.
import type { FloatArray } from '../../lib';
import { type BoundsOptions, type Columns, boundsColumns } from '../bounds';
import { type ComputedRow, type DeviceChoice, computeSlots, describeBackends } from '../devices';
import type { Format, ModelTensor } from '../model';
import { elementCount } from '../model';
import { openModel } from '../open-model';
import { TensorPipeline } from '../pipeline';
import { progressBar } from '../progress';
import { type Selected, type SelectionOptions, selectTensors } from '../selection';
import { type ComputeOptions, sigmaOf } from '../sigma';
import { type Column, LIPSCHITZ_LABEL, formatMegabytes, formatMs, formatRows, formatShape, formatSigma, sigmaProduct } from '../table';

export interface ReportOptions extends SelectionOptions, ComputeOptions, BoundsOptions {
  json: boolean;
  /** --device: a GPU index, or 'all' to spread the tensors over every GPU. */
  device?: DeviceChoice;
}

/** ok: σ computed; non-finite: NaN or ±Inf in the weights (or an overflow), not computed; skipped: unsupported dtype. */
export type RowStatus = 'ok' | 'non-finite' | 'skipped';

export interface ReportRow {
  name: string;
  shape: number[];
  dtype: string;
  dim: number | null;
  status: RowStatus;
  /** Why a row is not 'ok', in words; '' when it is. */
  note: string;
  sigma: number | null;
  iterations: number | null;
  converged: boolean | null;
  /** The backend that computed it ('exact' for --exact), null when nothing was computed. */
  backend: string | null;
  /** The GPU, on the cuda backend. */
  device: number | null;
  ms: number | null;
  /** --conv-input: the 4-D tensor as a convolution on that input (cli/bounds.ts). --certify: certified [lower, upper]. */
  operator?: Columns['operator'];
  certified?: Columns['certified'];
}

export interface ReportJson {
  file: string;
  format: Format;
  /** How the model is stored, e.g. 'safetensors, 4 shards'. */
  storage: string;
  method: 'power-iteration' | 'exact';
  backend: string;
  tolerance: number | null;
  /** One row per selected tensor, in model order. */
  tensors: ReportRow[];
  /** Tensors in the model that were not selected (not floating point, fewer than 2 dims, or filtered out). */
  skipped: string[];
  totals: {
    /** Rows with σ. */
    tensors: number;
    nonFinite: number;
    skipped: number;
    /** σ computation time, summed over tensors. */
    ms: number;
    /** Everything, reading included. */
    wallMs: number;
    /** Stored bytes of the selected tensors, all read. */
    bytes: number;
    /** bytes over wallMs. */
    megabytesPerSecond: number;
    /** Over the rows with σ. */
    sigmaProduct: number;
    sigmaProductLog10: number;
    sigmaProductMeaning: string;
  };
}

function emptyRow(tensor: ModelTensor, dim: number | null, status: RowStatus, note: string): ReportRow {
  const { name, shape, dtype } = tensor;
  return { name, shape, dtype, dim, status, note, sigma: null, iterations: null, converged: null, backend: null, device: null, ms: null };
}

export async function report(file: string, options: ReportOptions, out: (text: string) => void): Promise<ReportJson> {
  const wallStart = performance.now();
  const slots = computeSlots(options.backend, options.device, options.exact);
  const model = await openModel(file);
  const rows = new Map<ModelTensor, ReportRow>();
  const progress = progressBar();
  let bytes: number;
  try {
    const { selected, unsupported } = selectTensors(model, options);
    for (const t of unsupported) rows.set(t, emptyRow(t, null, 'skipped', `skipped: ${t.unsupported}`));
    bytes = selected.reduce((sum, s) => sum + s.tensor.byteLength, 0);
    progress.start(selected.length, bytes);
    const compute = async (s: Selected, values: FloatArray, device: number | undefined) => {
      const r = await sigmaOf(model.path, s.tensor.name, values, s.tensor.shape, s.dim, options, device);
      // --conv-input and --certify: only for the rows with σ (a non-finite tensor has no bounds either).
      const columns =
        'nonFinite' in r ? {} : boundsColumns(model.path, s.tensor.name, values, s.tensor.shape, s.dim, model.format, options, options);
      return { r, device, columns };
    };
    // compute() keeps nothing of the values once it settles, so their memory is recycled for later tensors.
    const pipeline = new TensorPipeline(model, selected, compute, slots, progress, true);
    try {
      for (let i = 0; i < selected.length; i++) {
        const { selected: s, result } = await pipeline.next();
        const r = result.r;
        if ('nonFinite' in r) {
          rows.set(s.tensor, { ...emptyRow(s.tensor, s.dim, 'non-finite', `non-finite: ${r.nonFinite}`), ms: r.ms });
          continue;
        }
        const device = r.backend === 'cuda' ? (result.device ?? 0) : null;
        rows.set(s.tensor, {
          ...emptyRow(s.tensor, s.dim, 'ok', ''),
          sigma: r.sigma,
          iterations: r.iterations,
          converged: r.converged,
          backend: r.backend,
          device,
          ms: r.ms,
          ...result.columns,
        });
      }
    } finally {
      pipeline.close();
    }
  } finally {
    progress.stop();
    await model.close();
  }
  const ordered = model.tensors.filter((t) => rows.has(t)).map((t) => rows.get(t)!);
  const ok = ordered.filter((r) => r.status === 'ok');
  const product = sigmaProduct(ok.map((r) => r.sigma!));
  const wallMs = performance.now() - wallStart;
  const computed: ComputedRow[] = ok.map((r) => ({ backend: r.backend, device: r.device, elements: elementCount(r.shape) }));
  const result: ReportJson = {
    file,
    format: model.format,
    storage: model.description,
    method: options.exact ? 'exact' : 'power-iteration',
    backend: options.exact ? 'exact' : [...new Set(ok.map((r) => r.backend))].join(',') || String(options.backend),
    tolerance: options.exact ? null : options.tolerance,
    tensors: ordered,
    skipped: model.tensors.filter((t) => !rows.has(t)).map((t) => t.name),
    totals: {
      tensors: ok.length,
      nonFinite: ordered.filter((r) => r.status === 'non-finite').length,
      skipped: ordered.filter((r) => r.status === 'skipped').length,
      ms: ordered.reduce((sum, r) => sum + (r.ms ?? 0), 0),
      wallMs,
      bytes,
      megabytesPerSecond: bytes / 1e3 / wallMs,
      sigmaProduct: product.value,
      sigmaProductLog10: product.log10,
      sigmaProductMeaning: LIPSCHITZ_LABEL,
    },
  };
  out(options.json ? JSON.stringify(result, null, 2) : formatReport(result, product.text, computed, String(options.backend), options));
  return result;
}

/** The report's columns; a further one (another norm, say) is one more entry here. */
export const REPORT_COLUMNS: Column<ReportRow>[] = [
  { header: 'tensor', numeric: false, cell: (t) => t.name },
  { header: 'shape', numeric: false, cell: (t) => formatShape(t.shape) },
  { header: 'dtype', numeric: false, cell: (t) => t.dtype },
  { header: 'dim', numeric: true, cell: (t) => (t.dim === null ? '-' : String(t.dim)) },
  { header: 'σ', numeric: true, cell: (t) => (t.sigma === null ? '-' : formatSigma(t.sigma)) },
  { header: 'iters', numeric: true, cell: (t) => (t.iterations === null ? '-' : `${t.iterations}${t.converged ? '' : '*'}`) },
  { header: 'ms', numeric: true, cell: (t) => (t.ms === null ? '-' : formatMs(t.ms)) },
  { header: 'note', numeric: false, cell: (t) => t.note, optional: true },
];

function methodLine(r: ReportJson, computed: readonly ComputedRow[], requested: string): string {
  if (r.method === 'exact') return 'σ by exactSpectralNorm (float64 Lanczos, relative error ≤ 1e-10)';
  return `σ by power iteration to a relative tolerance of ${(r.tolerance as number).toExponential()} on ${describeBackends(computed, requested)}`;
}

function formatReport(
  r: ReportJson,
  productText: string,
  computed: readonly ComputedRow[],
  requested: string,
  options: BoundsOptions,
): string {
  const columns = [
    ...REPORT_COLUMNS.filter((c) => c.header !== 'note'),
    ...boundsTableColumns(options),
    ...REPORT_COLUMNS.filter((c) => c.header === 'note'),
  ];
  const lines = [
    `${r.file} (${r.storage}): ${methodLine(r, computed, requested)}`,
    ...boundsNotes(r.tensors, options),
    '',
    formatRows(columns, r.tensors),
    '',
  ];
  if (r.tensors.some((t) => t.converged === false)) lines.push('* did not converge within --max-iterations: σ is an estimate from below');
  const marked = [
    r.totals.nonFinite > 0 ? `${r.totals.nonFinite} non-finite (not computed; exit code 1)` : '',
    r.totals.skipped > 0 ? `${r.totals.skipped} of unsupported dtype` : '',
  ].filter((s) => s !== '');
  lines.push(
    `${r.totals.tensors} tensors reported${marked.length > 0 ? `, ${marked.join(', ')}` : ''}, ${r.skipped.length} not selected; ` +
      `${formatMegabytes(r.totals.bytes)} read; σ time ${formatMs(r.totals.ms)} ms, total ${formatMs(r.totals.wallMs)} ms (${r.totals.megabytesPerSecond.toFixed(0)} MB/s)`,
    `${LIPSCHITZ_LABEL}${r.totals.nonFinite > 0 ? ' (over the rows with σ)' : ''}: ${productText}`,
  );
  return lines.join('\n');
}

/** The --conv-input and --certify columns, before the note. */
function boundsTableColumns(options: BoundsOptions): Column<ReportRow>[] {
  const columns: Column<ReportRow>[] = [];
  if (options.convInput) {
    columns.push(
      { header: 'operator σ', numeric: true, cell: (t) => (t.operator?.sigma === undefined ? '-' : formatSigma(t.operator.sigma)) },
      { header: '≤ (certified)', numeric: true, cell: (t) => (t.operator?.upper === undefined ? '-' : formatSigma(t.operator.upper)) },
    );
  }
  if (options.certify) {
    columns.push({
      header: 'certified [lower, upper]',
      numeric: true,
      cell: (t) => (t.certified ? `[${formatSigma(t.certified.lower)}, ${formatSigma(t.certified.upper)}]` : '-'),
    });
  }
  return columns;
}

/** The lines that say what the --conv-input and --certify columns are, and which tensors have no operator σ. */
function boundsNotes(rows: readonly ReportRow[], options: BoundsOptions): string[] {
  const notes: string[] = [];
  if (options.convInput) {
    const [h, w] = options.convInput;
    notes.push(
      `operator σ: each 4-D tensor as a convolution on a ${h}×${w} input (stride ${options.stride ?? 1}, padding ${options.padding ?? 0}, ` +
        `${options.paddingMode ?? 'zeros'}), its largest singular value and a certified upper bound (docs/conv.md)`,
    );
  }
  if (options.certify) notes.push('certified [lower, upper]: bounds on the matrix σ with rounding accounted for');
  for (const t of rows) if (t.operator?.error) notes.push(`${t.name}: no operator σ: ${t.operator.error}`);
  return notes;
}
