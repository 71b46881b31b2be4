// spectral-norm normalize <model> -o <out>: a new model of the same format with each selected tensor W·target/σ
// (with --clip, only where σ > target); everything else copied byte for byte.
import type { FloatArray } from '../../lib';
import { certifiedClip } from '../bounds';
import { ModelFileError, firstLine } from '../errors';
import type { ModelTensor } from '../model';
import { openModel } from '../open-model';
import { progressBar } from '../progress';
import { type SelectionOptions, selectTensors } from '../selection';
import { type ComputeOptions, normalizedCopy } from '../sigma';
import { formatMs, formatSigma, formatTable } from '../table';

export interface NormalizeOptions extends SelectionOptions, Omit<ComputeOptions, 'exact'> {
  output: string;
  inPlace: boolean;
  target: number;
  clip: boolean;
  json: boolean;
}

export type Action = 'normalized' | 'kept: σ ≤ target' | 'kept: zero matrix';

export interface NormalizeRow {
  name: string;
  shape: number[];
  dtype: string;
  dim: number;
  /** σ before. */
  sigma: number;
  iterations: number;
  action: Action;
  /** The dtype written, when it differs from the one read (dequantized tfjs weights). */
  writtenAs: string | null;
  ms: number;
  /** --clip: the certified upper bound on σ the decision used (0: ‖W‖_F ≤ target already); null without --clip. */
  certifiedUpper: number | null;
}

export interface NormalizeJson {
  input: string;
  output: string;
  format: 'safetensors' | 'tfjs';
  target: number;
  clip: boolean;
  backend: string;
  tensors: NormalizeRow[];
  files: string[];
  totals: { tensors: number; changed: number; ms: number; wallMs: number };
}

export async function normalize(file: string, options: NormalizeOptions, out: (text: string) => void, warn: (text: string) => void): Promise<NormalizeJson> {
  const wallStart = performance.now();
  const model = await openModel(file);
  const rows: NormalizeRow[] = [];
  const backends = new Set<string>();
  const progress = progressBar();
  let files: string[] = [];
  try {
    const selected = selectTensors(model, options);
    const dims = new Map(selected.map((s) => [s.tensor, s.dim]));
    const transform = async (tensor: ModelTensor, values: FloatArray): Promise<FloatArray | null> => {
      const dim = dims.get(tensor) as number;
      const { result, out } = await normalizedCopy(file, tensor.name, values, tensor.shape, dim, options);
      let scaled = out;
      backends.add(result.backend);
      let action: Action = 'normalized';
      let certifiedUpper: number | null = null;
      if (result.sigma === 0) action = 'kept: zero matrix';
      else if (options.clip) {
        // Power iteration's σ is an estimate from below: the decision and the division use a certified bound.
        const clip = certifiedClip(file, tensor.name, values, tensor.shape, dim, tensor.dtype, options.target, options);
        certifiedUpper = clip.upper;
        if (clip.values === null) action = 'kept: σ ≤ target';
        else scaled = clip.values;
      } else if (options.target !== 1) for (let i = 0; i < scaled.length; i++) scaled[i] *= options.target;
      rows.push({ name: tensor.name, shape: tensor.shape, dtype: tensor.dtype, dim, sigma: result.sigma, iterations: result.iterations, action, writtenAs: null, ms: result.ms, certifiedUpper });
      progress.tick(tensor.name);
      return action === 'normalized' ? scaled : null;
    };
    progress.start(selected.length);
    const written = await model.rewrite(options.inPlace ? file : options.output, new Set(dims.keys()), transform, options.inPlace);
    files = written.files;
    for (const row of rows) if (written.widened.includes(row.name)) row.writtenAs = 'float32';
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(file, firstLine(error));
  } finally {
    progress.stop();
    await model.close();
  }
  const widened = rows.filter((r) => r.writtenAs !== null).map((r) => r.name);
  if (widened.length > 0) warn(`note: ${widened.length} quantized or float16 weight(s) were written as float32: ${widened.join(', ')}`);
  const result: NormalizeJson = {
    input: file,
    output: options.inPlace ? file : options.output,
    format: model.format,
    target: options.target,
    clip: options.clip,
    backend: [...backends].join(',') || String(options.backend),
    tensors: rows,
    files,
    totals: {
      tensors: rows.length,
      changed: rows.filter((r) => r.action === 'normalized').length,
      ms: rows.reduce((sum, r) => sum + r.ms, 0),
      wallMs: performance.now() - wallStart,
    },
  };
  out(options.json ? JSON.stringify(result, null, 2) : formatNormalize(result));
  return result;
}

function formatNormalize(r: NormalizeJson): string {
  const table = formatTable(
    ['tensor', 'shape', 'dtype', 'dim', 'σ before', 'iters', 'action', 'ms'],
    r.tensors.map((t) => [
      t.name,
      `[${t.shape.join(', ')}]`,
      t.writtenAs ? `${t.dtype} → ${t.writtenAs}` : t.dtype,
      String(t.dim),
      formatSigma(t.sigma),
      String(t.iterations),
      t.action,
      formatMs(t.ms),
    ]),
    [false, false, false, true, true, true, false, true],
  );
  const goal = r.clip ? `σ clipped to at most ${r.target} (certified: W·target/U with U a certified upper bound on σ)` : `σ = ${r.target}`;
  return [
    `${r.input} → ${r.output} (${r.format}): ${goal}, on the ${r.backend} backend`,
    '',
    table,
    '',
    `${r.totals.changed} of ${r.totals.tensors} selected tensors changed; everything else copied byte for byte; σ time ${formatMs(r.totals.ms)} ms, total ${formatMs(r.totals.wallMs)} ms`,
  ].join('\n');
}
