// Rounding-error accounting for certified bounds (Higham, "Accuracy and Stability of Numerical Algorithms", ch. 3):
// γ_n = n·u/(1 − n·u) bounds the relative error of a float64 sum of n products, whatever the summation order.
// Every bound the library calls certified is computed in float64 and then widened by these margins, so it holds for
// the exact real numbers, not just for the rounded ones.

/** The unit roundoff of float64. */
export const UNIT_ROUNDOFF = 2 ** -53;

export function gamma(n: number): number {
  const nu = n * UNIT_ROUNDOFF;
  if (!(nu < 0.5)) throw new RangeError(`gamma(${n}) is out of range`);
  return nu / (1 - nu);
}

/**
 * x rounded away from zero by `ops` roundings' worth: a bound computed with a few float64 operations, made to cover
 * the true value of the same formula. Also covers one subnormal step, for values near underflow; an exact 0 (of a
 * zero matrix) stays 0.
 */
export function roundUp(x: number, ops = 4): number {
  return x === 0 ? 0 : x * (1 + 2 * ops * UNIT_ROUNDOFF) + Number.MIN_VALUE;
}

export function roundDown(x: number, ops = 4): number {
  return Math.max(0, x * (1 - 2 * ops * UNIT_ROUNDOFF) - Number.MIN_VALUE);
}

/** Sums of squares in blocks of this many terms, then over the blocks: the error bound grows with their sum. */
const BLOCK = 128;

/** Σ x_i² in blocks, and the bound on its relative error. */
export function sumSquares(x: ArrayLike<number>, n = x.length): { value: number; relativeError: number } {
  let total = 0;
  for (let start = 0; start < n; start += BLOCK) {
    const end = Math.min(n, start + BLOCK);
    let s = 0;
    for (let i = start; i < end; i++) s += x[i] * x[i];
    total += s;
  }
  // Each square carries one rounding, and the longest chain of additions is a block plus the blocks' sum.
  return { value: total, relativeError: gamma(BLOCK + Math.ceil(n / BLOCK) + 1) };
}

/** [lower, upper] bounds on ‖x‖₂. */
export function normBounds(x: ArrayLike<number>, n = x.length): { lower: number; upper: number } {
  const { value, relativeError } = sumSquares(x, n);
  return {
    lower: roundDown(Math.sqrt(value / (1 + relativeError))),
    upper: roundUp(Math.sqrt(value / (1 - relativeError))),
  };
}
