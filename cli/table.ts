// Plain-text tables and number formats for the human-readable output. A table is a list of columns over rows, so a
// command (or a later option) adds a column by adding one entry; an optional column shows only when it has a value.

export interface Column<R> {
  header: string;
  /** Right-aligned when true. */
  numeric: boolean;
  cell: (row: R) => string;
  /** Shown only when some row has a non-empty cell. */
  optional?: boolean;
}

/** Left-aligned text columns, right-aligned numeric ones, two spaces apart. */
export function formatTable(header: string[], rows: string[][], numeric: boolean[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatRows<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const shown = columns.filter((c) => !c.optional || rows.some((r) => c.cell(r) !== ''));
  return formatTable(
    shown.map((c) => c.header),
    rows.map((r) => shown.map((c) => c.cell(r))),
    shown.map((c) => c.numeric),
  );
}

export function formatSigma(sigma: number): string {
  return sigma !== 0 && (Math.abs(sigma) >= 1e6 || Math.abs(sigma) < 1e-4) ? sigma.toExponential(6) : sigma.toPrecision(7);
}

export function formatMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(2);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Bytes as GB, MB or kB (powers of 10, the units of the MB/s figures). */
export function formatMegabytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

/**
 * The product of σ over the layers, from the sum of their logarithms, so a deep model neither overflows nor
 * underflows: { value, text }, value being Infinity or 0 when the product is outside double's range.
 */
export function sigmaProduct(sigmas: readonly number[]): { value: number; log10: number; text: string } {
  if (sigmas.some((s) => s === 0)) return { value: 0, log10: -Infinity, text: '0' };
  const log10 = sigmas.reduce((sum, s) => sum + Math.log10(s), 0);
  const value = 10 ** log10;
  if (Number.isFinite(value) && value !== 0) return { value, log10, text: formatSigma(value) };
  const exponent = Math.floor(log10);
  return { value, log10, text: `${(10 ** (log10 - exponent)).toFixed(6)}e${exponent >= 0 ? '+' : ''}${exponent}` };
}

export const LIPSCHITZ_LABEL =
  'product of σ: a Lipschitz upper bound for a plain feed-forward chain of these layers with 1-Lipschitz activations, and nothing more';
