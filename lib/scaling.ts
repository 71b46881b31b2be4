// Exact rescaling by powers of two, for weights whose magnitude puts σ² (or σ itself) outside double's range.

/** max |w_i|; when w holds NaN or ±Infinity, value is NaN and nonFinite the first such index (else -1). */
export function maxAbs(w: ArrayLike<number>): { value: number; nonFinite: number } {
  let value = 0;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]);
    if (!(a <= Number.MAX_VALUE)) return { value: NaN, nonFinite: i };
    if (a > value) value = a;
  }
  return { value, nonFinite: -1 };
}

/**
 * Multiplying by `down` brings a value of magnitude `largest` near 1; `up` undoes it. Both are exact (powers of two)
 * and apply the factor in two halves, since 2^1074 (for a subnormal `largest`) is itself out of range.
 */
export function powerOfTwoScaling(largest: number): { down: (x: number) => number; up: (x: number) => number } {
  const exponent = Math.floor(Math.log2(largest));
  const half = Math.trunc(exponent / 2);
  return {
    down: (x) => x * 2 ** (half - exponent) * 2 ** -half,
    up: (x) => x * 2 ** (exponent - half) * 2 ** half,
  };
}

/** w mapped by `scale` into float64, by index: Float64Array.from(w, scale) goes through the iterator protocol and
 * boxes every element first: most of a second and a garbage collection on a kernel of a million. */
export function scaledCopy(w: ArrayLike<number>, scale: (x: number) => number): Float64Array {
  const out = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = scale(w[i]);
  return out;
}
