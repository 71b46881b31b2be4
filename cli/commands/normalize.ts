// spectral-norm normalize <model> -o <out>: a new model of the same format with each selected tensor W·target/σ
// (with --clip, only where σ > target); everything else copied byte for byte.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

import type { FloatArray } from '../../lib';
import { type ClipDecision, certifiedClip } from '../bounds';
import { type ComputedRow, type DeviceChoice, computeSlots, describeBackends } from '../devices';
import { ModelFileError, firstLine } from '../errors';
import type { Format, ModelFile, ModelTensor } from '../model';
import { elementCount } from '../model';
import { openModel } from '../open-model';
import { TensorPipeline } from '../pipeline';
import { progressBar } from '../progress';
import { type Selected, type SelectionOptions, selectTensors } from '../selection';
import { type ComputeOptions, type SigmaResult, normalizeValues } from '../sigma';
import { type Column, formatMs, formatRows, formatShape, formatSigma } from '../table';

export interface NormalizeOptions extends SelectionOptions, Omit<ComputeOptions, 'exact'> {
  output: string;
  inPlace: boolean;
  target: number;
  clip: boolean;
  json: boolean;
  device?: DeviceChoice;
}

/** What happened to a tensor: a code for scripts, with the words beside it in NormalizeRow.actionText. */
export type Action = 'normalized' | 'kept' | 'skipped';

export interface NormalizeRow {
  name: string;
  shape: number[];
  dtype: string;
  dim: number | null;
  /** σ before; null when skipped. */
  sigma: number | null;
  iterations: number | null;
  action: Action;
  /** 'normalized', 'kept: σ ≤ target', 'kept: zero matrix' or 'skipped: unsupported dtype …'. */
  actionText: string;
  /** The dtype written, when it differs from the one read (dequantized tfjs weights). */
  writtenAs: string | null;
  backend: string | null;
  device: number | null;
  ms: number | null;
  /** --clip: the certified upper bound on σ the decision used (0: ‖W‖_F ≤ target already); null otherwise. */
  certifiedUpper: number | null;
}

export interface NormalizeJson {
  input: string;
  output: string;
  format: Format;
  storage: string;
  target: number;
  clip: boolean;
  backend: string;
  tensors: NormalizeRow[];
  files: string[];
  totals: { tensors: number; changed: number; skipped: number; ms: number; wallMs: number };
}

interface Computed {
  result: SigmaResult & { iterations: number };
  out: FloatArray;
  device: number | undefined;
  /** --clip's certified decision (cli/bounds.ts); null without --clip or for a zero matrix. */
  clip: ClipDecision | null;
}

export async function normalize(
  file: string,
  options: NormalizeOptions,
  out: (text: string) => void,
  warn: (text: string) => void,
): Promise<NormalizeJson> {
  const wallStart = performance.now();
  const slots = computeSlots(options.backend, options.device, false);
  const model = await openModel(file);
  const rows = new Map<ModelTensor, NormalizeRow>();
  const progress = progressBar();
  let files: string[];
  let output: string;
  try {
    const { selected, unsupported } = selectTensors(model, options);
    for (const t of unsupported) {
      const { name, shape, dtype } = t;
      rows.set(t, {
        name,
        shape,
        dtype,
        dim: null,
        sigma: null,
        iterations: null,
        action: 'skipped',
        actionText: `skipped: ${t.unsupported}`,
        writtenAs: null,
        backend: null,
        device: null,
        ms: null,
        certifiedUpper: null,
      });
    }
    const dims = new Map(selected.map((s) => [s.tensor, s.dim]));
    const order: Selected[] = model.writeOrder(selected.map((s) => s.tensor)).map((tensor) => ({ tensor, dim: dims.get(tensor)! }));
    progress.start(
      order.length,
      order.reduce((sum, s) => sum + s.tensor.byteLength, 0),
    );
    const compute = async (s: Selected, values: FloatArray, device: number | undefined): Promise<Computed> => {
      const { name, shape, dtype } = s.tensor;
      // --clip decides on the weights as read, which normalizeValues divides in place: a copy first.
      const original = options.clip ? values.slice() : null;
      const normalized = await normalizeValues(model.path, name, values, shape, s.dim, options, device);
      const clip =
        original && normalized.result.sigma !== 0
          ? certifiedClip(model.path, name, original, shape, s.dim, dtype, options.target, options)
          : null;
      return { ...normalized, device, clip };
    };
    const pipeline = new TensorPipeline<Computed>(model, order, compute, slots, progress);
    const transform = async (tensor: ModelTensor): Promise<FloatArray | null> => {
      const { selected: s, result: computed } = await pipeline.next();
      if (s.tensor !== tensor) throw new Error(`internal: the rewrite asked for ${tensor.name} but ${s.tensor.name} was computed`);
      const { result, device, clip } = computed;
      let scaled = computed.out;
      let action: Action = 'normalized';
      let actionText = 'normalized';
      if (result.sigma === 0) [action, actionText] = ['kept', 'kept: zero matrix'];
      else if (clip) {
        // Power iteration's σ is an estimate from below: the decision and the division use a certified bound.
        if (clip.values === null) [action, actionText] = ['kept', 'kept: σ ≤ target'];
        else scaled = clip.values;
      } else if (options.target !== 1) for (let i = 0; i < scaled.length; i++) scaled[i] *= options.target;
      const { name, shape, dtype } = tensor;
      rows.set(tensor, {
        name,
        shape,
        dtype,
        dim: s.dim,
        sigma: result.sigma,
        iterations: result.iterations,
        action,
        actionText,
        writtenAs: null,
        backend: result.backend,
        device: result.backend === 'cuda' ? (device ?? 0) : null,
        ms: result.ms,
        certifiedUpper: clip ? clip.upper : null,
      });
      return action === 'normalized' ? scaled : null;
    };
    try {
      output = options.inPlace ? model.file : await outputPath(model, options.output);
      const written = await model.rewrite(output, new Set(dims.keys()), transform, options.inPlace);
      files = written.files;
      for (const row of rows.values()) if (written.widened.includes(row.name)) row.writtenAs = 'float32';
    } finally {
      pipeline.close();
    }
  } catch (error) {
    if (error instanceof ModelFileError || (error instanceof Error && error.name === 'UsageError')) throw error;
    throw new ModelFileError(file, firstLine(error));
  } finally {
    progress.stop();
    await model.close();
  }
  const ordered = model.tensors.filter((t) => rows.has(t)).map((t) => rows.get(t)!);
  const widened = ordered.filter((r) => r.writtenAs !== null).map((r) => r.name);
  if (widened.length > 0) warn(`note: ${widened.length} quantized or float16 weight(s) were written as float32: ${widened.join(', ')}`);
  const computed: ComputedRow[] = ordered
    .filter((r) => r.backend !== null)
    .map((r) => ({ backend: r.backend, device: r.device, elements: elementCount(r.shape) }));
  const result: NormalizeJson = {
    input: file,
    output: options.inPlace ? file : output,
    format: model.format,
    storage: model.description,
    target: options.target,
    clip: options.clip,
    backend: [...new Set(computed.map((r) => r.backend))].join(',') || String(options.backend),
    tensors: ordered,
    files,
    totals: {
      tensors: ordered.filter((r) => r.action !== 'skipped').length,
      changed: ordered.filter((r) => r.action === 'normalized').length,
      skipped: ordered.filter((r) => r.action === 'skipped').length,
      ms: ordered.reduce((sum, r) => sum + (r.ms ?? 0), 0),
      wallMs: performance.now() - wallStart,
    },
  };
  out(options.json ? JSON.stringify(result, null, 2) : formatNormalize(result, computed, String(options.backend)));
  return result;
}

export const NORMALIZE_COLUMNS: Column<NormalizeRow>[] = [
  { header: 'tensor', numeric: false, cell: (t) => t.name },
  { header: 'shape', numeric: false, cell: (t) => formatShape(t.shape) },
  { header: 'dtype', numeric: false, cell: (t) => (t.writtenAs ? `${t.dtype} → ${t.writtenAs}` : t.dtype) },
  { header: 'dim', numeric: true, cell: (t) => (t.dim === null ? '-' : String(t.dim)) },
  { header: 'σ before', numeric: true, cell: (t) => (t.sigma === null ? '-' : formatSigma(t.sigma)) },
  { header: 'iters', numeric: true, cell: (t) => (t.iterations === null ? '-' : String(t.iterations)) },
  { header: 'action', numeric: false, cell: (t) => t.actionText },
  { header: 'ms', numeric: true, cell: (t) => (t.ms === null ? '-' : formatMs(t.ms)) },
];

/** -o as given, or, for a model opened from a folder or an -o that is a folder, the model's file name inside it. */
async function outputPath(model: ModelFile, output: string): Promise<string> {
  const isFolder = await fs.stat(output).then(
    (s) => s.isDirectory(),
    () => false,
  );
  return model.path !== model.file || isFolder || /[/]$/.test(output) ? path.join(output, path.basename(model.file)) : output;
}

function formatNormalize(r: NormalizeJson, computed: readonly ComputedRow[], requested: string): string {
  const goal = r.clip ? `σ clipped to at most ${r.target} (certified: W·target/U with U a certified upper bound on σ)` : `σ = ${r.target}`;
  const skipped = r.totals.skipped > 0 ? `, ${r.totals.skipped} skipped` : '';
  return [
    `${r.input} → ${r.output} (${r.storage}): ${goal}, on ${describeBackends(computed, requested)}`,
    '',
    formatRows(NORMALIZE_COLUMNS, r.tensors),
    '',
    `${r.totals.changed} of ${r.totals.tensors} selected tensors changed${skipped}; everything else copied byte for byte; σ time ${formatMs(r.totals.ms)} ms, total ${formatMs(r.totals.wallMs)} ms`,
  ].join('\n');
}
