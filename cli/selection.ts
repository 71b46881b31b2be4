// Which tensors a command works on, and along which dim. By default every floating-point tensor with two or more
// dimensions; --include keeps only names matching one of its patterns, --exclude drops names matching one of its
// (as Haiku's SNParamsTree ignore_regex does), and --dim sets the dim globally or per pattern. A tensor that would
// be selected but whose dtype the CLI cannot compute on (float8, an unknown ONNX type) becomes a skipped row.
import { ModelFileError, UsageError } from './errors';
import type { ModelFile, ModelTensor } from './model';

export interface DimRule {
  /** null: every tensor. */
  pattern: RegExp | null;
  dim: number;
}

export interface SelectionOptions {
  include: RegExp[];
  exclude: RegExp[];
  /** The first rule whose pattern matches wins; a rule without a pattern applies to the rest. */
  dims: DimRule[];
}

export interface Selected {
  tensor: ModelTensor;
  /** Normalized to 0 ≤ dim < rank. */
  dim: number;
}

export interface Selection {
  /** The tensors to compute on, in model order. */
  selected: Selected[];
  /** Tensors of rank ≥ 2 that the patterns select but whose dtype is unsupported: rows marked skipped. */
  unsupported: ModelTensor[];
}

/** Parses one --dim value: `N`, or `REGEX=N` (split at the last '=', so the pattern may contain '='). */
export function parseDimRule(spec: string): DimRule {
  const at = spec.lastIndexOf('=');
  const pattern = at < 0 ? null : spec.slice(0, at);
  const number = at < 0 ? spec : spec.slice(at + 1);
  if (!/^-?\d+$/.test(number.trim())) throw new RangeError(`--dim must be N or REGEX=N with N an integer, got '${spec}'`);
  return { pattern: pattern === null ? null : parsePattern('--dim', pattern), dim: Number(number) };
}

export function parsePattern(option: string, source: string): RegExp {
  try {
    return new RegExp(source);
  } catch (error) {
    throw new RangeError(`${option} '${source}' is not a valid regular expression: ${(error as Error).message}`);
  }
}

function describeSelection(options: SelectionOptions): string {
  const parts = [...options.include.map((re) => `--include '${re.source}'`), ...options.exclude.map((re) => `--exclude '${re.source}'`)];
  return parts.length > 0 ? parts.join(' ') : 'the default selection (floating-point tensors of rank ≥ 2)';
}

/**
 * The selected tensors. A selection that leaves nothing to do is a UsageError (exit code 2): there is no σ to report
 * and no product of σ to print, and a silent success would hide a mistyped pattern.
 */
export function selectTensors(model: ModelFile, options: SelectionOptions): Selection {
  const selected: Selected[] = [];
  const unsupported: ModelTensor[] = [];
  for (const tensor of model.tensors) {
    if (tensor.shape.length < 2 || !(tensor.numeric || tensor.unsupported)) continue;
    if (options.include.length > 0 && !options.include.some((re) => re.test(tensor.name))) continue;
    if (options.exclude.some((re) => re.test(tensor.name))) continue;
    if (!tensor.numeric) {
      unsupported.push(tensor);
      continue;
    }
    const rule = options.dims.find((r) => r.pattern === null || r.pattern.test(tensor.name));
    const dim = rule ? rule.dim : (tensor.defaultDim ?? model.defaultDim);
    const rank = tensor.shape.length;
    if (dim < -rank || dim >= rank) {
      throw new ModelFileError(model.path, `--dim ${dim} is out of range for shape [${tensor.shape.join(', ')}]`, tensor.name);
    }
    selected.push({ tensor, dim: dim < 0 ? dim + rank : dim });
  }
  if (selected.length === 0) {
    const numeric = model.tensors.filter((t) => t.numeric && t.shape.length >= 2).length;
    const why = unsupported.length > 0 ? `, and ${unsupported.length} of unsupported dtype` : '';
    throw new UsageError(
      `${model.path}: no tensor to compute on: ${describeSelection(options)} matches none of its ${numeric} floating-point tensors of rank ≥ 2 (of ${model.tensors.length} in all${why})`,
    );
  }
  return { selected, unsupported };
}
