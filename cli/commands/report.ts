// spectral-norm report <model>: σ of every selected tensor, one row each, then totals.
import { backendInfo } from '../../lib';
import { openModel } from '../open-model';
import { progressBar } from '../progress';
import { type SelectionOptions, selectTensors } from '../selection';
import { type ComputeOptions, sigmaOf } from '../sigma';
import { LIPSCHITZ_LABEL, formatMs, formatSigma, formatTable, sigmaProduct } from '../table';

export interface ReportOptions extends SelectionOptions, ComputeOptions {
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
      rows.push({ name: tensor.name, shape: tensor.shape, dtype: tensor.dtype, dim, sigma: r.sigma, iterations: r.iterations, converged: r.converged, ms: r.ms });
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
  out(options.json ? JSON.stringify(result, null, 2) : formatReport(result, product.text));
  return result;
}

function methodLine(r: ReportJson): string {
  if (r.method === 'exact') return 'σ by exactSpectralNorm (float64 Lanczos, relative error ≤ 1e-10)';
  const info = backendInfo();
  const cpu = r.backend === 'cpu' ? ` (${info.cpu.simd}, ${info.cpu.threads} threads by default)` : '';
  return `σ by power iteration to a relative tolerance of ${(r.tolerance as number).toExponential()} on the ${r.backend} backend${cpu}`;
}

function formatReport(r: ReportJson, productText: string): string {
  const table = formatTable(
    ['tensor', 'shape', 'dtype', 'dim', 'σ', 'iters', 'ms'],
    r.tensors.map((t) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      t.dtype,
      String(t.dim),
      formatSigma(t.sigma),
      t.iterations === null ? '-' : `${t.iterations}${t.converged ? '' : '*'}`,
      formatMs(t.ms),
    ]),
    [false, false, false, true, true, true, true],
  );
  const lines = [`${r.file} (${r.format}): ${methodLine(r)}`, '', table, ''];
  if (r.tensors.some((t) => t.converged === false)) lines.push('* did not converge within --max-iterations: σ is an estimate from below');
  lines.push(
    `${r.totals.tensors} tensors reported, ${r.skipped.length} skipped; σ time ${formatMs(r.totals.ms)} ms, total ${formatMs(r.totals.wallMs)} ms`,
    `${LIPSCHITZ_LABEL}: ${productText}`,
  );
  return lines.join('\n');
}
