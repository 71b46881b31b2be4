// Certified lower bounds: σ ≥ ‖C x‖/‖x‖ for any x ≠ 0, and this computes that ratio for an explicit x with its
// rounding accounted for, so the bound holds for the exact operator.
import type { ConvOperator } from '../../binding';
import { kernelIndexer } from './geometry';
import { gamma, normBounds, roundDown, roundUp } from './rounding';

/** For each tap, how many outputs read one input position through it, at most (more than 1 only when wrapping). */
function readsPerTap(input: number, output: number, kernel: number, stride: number, padding: number, circular: boolean): number {
  let most = 0;
  const hits = new Int32Array(input);
  for (let a = 0; a < kernel; a++) {
    hits.fill(0);
    for (let i = 0; i < output; i++) {
      const at = stride * i + a - padding;
      const n = circular ? ((at % input) + input) % input : at;
      if (n >= 0 && n < input) most = Math.max(most, ++hits[n]);
    }
  }
  return most;
}

/**
 * An upper bound on ‖|C|‖₂, the spectral norm of the operator's matrix with every entry made non-negative:
 * ‖|C|‖₂ ≤ √(‖|C|‖₁·‖|C|‖_∞). A row (one output) sums |K| over one output channel's taps; a column (one input)
 * is reached through each tap by at most readsPerTap outputs per dimension.
 */
export function absoluteNormBound(weight: ArrayLike<number>, op: ConvOperator): number {
  const at = kernelIndexer(op);
  const { outChannels: cout, inChannels: cin, kernelHeight: kh, kernelWidth: kw } = op;
  const rows = new Float64Array(cout);
  const cols = new Float64Array(cin);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cin; c++) {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const k = Math.abs(weight[at(o, c, a, b)]);
          rows[o] += k;
          cols[c] += k;
        }
      }
    }
  }
  const reads =
    readsPerTap(op.inputHeight, op.outputHeight, kh, op.strideHeight, op.paddingHeight, op.circular) *
    readsPerTap(op.inputWidth, op.outputWidth, kw, op.strideWidth, op.paddingWidth, op.circular);
  const terms = Math.max(cin * kh * kw, cout * kh * kw);
  const largest = (x: Float64Array) =>
    roundUp(
      x.reduce((m, v) => Math.max(m, v), 0),
      terms + 1,
    );
  return roundUp(Math.sqrt(largest(rows) * largest(cols) * reads), 4);
}

/**
 * A certified lower bound on ‖C x‖/‖x‖, given y = C x as computed in float64 by any summation order: each output
 * is a sum of at most n = cin·kh·kw products, so |ŷ − y| ≤ γ_n·|C||x| elementwise, and ‖|C||x|‖ ≤ ‖|C|‖₂·‖x‖.
 */
export function certifiedRatio(op: ConvOperator, absoluteBound: number, x: ArrayLike<number>, y: ArrayLike<number>): number {
  const nx = normBounds(x);
  if (!(nx.lower > 0)) return 0;
  const ny = normBounds(y);
  const slack = gamma(op.inChannels * op.kernelHeight * op.kernelWidth + 1) * absoluteBound * nx.upper;
  return roundDown(Math.max(0, ny.lower - roundUp(slack, 2)) / nx.upper, 2);
}
