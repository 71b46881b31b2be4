// The pure-JS backend: the same contract (binding.d.ts) and the same algorithm as native/cpu/power_iteration.cpp,
// in TypeScript, for machines where the addon could not be built. Sums run in double like the native kernels, so
// the backends agree to rounding; W/σ is bit-identical (a float32 quotient rounded from double is correctly rounded).
import type { Backend, ConvApplyJob, ConvOperator, FloatArray, NativeInfo, PowerJob, PowerLayer } from '../binding';
import { LayerStatus } from './codes';
import { inputLength, kernelShape, outputSize } from './conv/geometry';
import { convForward, convTranspose } from './conv/reference';
import { circulantSpectrum } from './conv/spectrum';
import { maxAbs } from './scaling';

const SAFE_MIN = 2 ** -900;

/** ‖x‖₂ without spurious overflow or underflow; NaN when x holds NaN or ±Inf. */
function norm2(x: ArrayLike<number>, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  if (Number.isFinite(s) && s >= SAFE_MIN) return Math.sqrt(s);
  // NaN or ±Inf in x, or squares that overflowed or underflowed (to 0 as well): redo it scaled.
  let m = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[i]);
    if (!(a <= Number.MAX_VALUE)) return NaN;
    if (a > m) m = a;
  }
  if (m === 0) return 0;
  let scaled = 0;
  for (let i = 0; i < n; i++) {
    const y = x[i] / m;
    scaled += y * y;
  }
  return m * Math.sqrt(scaled);
}

/** PyTorch's max(‖x‖, eps), except that a zero vector with eps = 0 divides by 1 rather than giving 0/0. */
function clampNorm(norm: number, eps: number): number {
  const den = Math.max(norm, eps);
  return den > 0 ? den : 1;
}

interface LayerOutcome {
  sigma: number;
  status: LayerStatus;
  iterationsRun: number;
  converged: boolean;
  uNew: FloatArray | null;
  vNew: FloatArray | null;
}

class LayerRun {
  private readonly w: FloatArray;
  /** A convolution layer's operator: then W x is the convolution and Wᵀ its transpose (lib/conv/reference.ts). */
  private readonly op: ConvOperator | null;
  private readonly rows: number;
  private readonly cols: number;
  private readonly x: Float64Array;
  private readonly d: Float64Array;
  private readonly t: Float64Array;
  readonly uNew: FloatArray;
  readonly vNew: FloatArray;

  constructor(
    private readonly layer: PowerLayer,
    private readonly job: PowerJob,
  ) {
    this.w = layer.weight;
    this.op = layer.operator ?? null;
    this.rows = layer.rows;
    this.cols = layer.outer * layer.inner;
    const vectorNorm = layer.vectorNorm;
    this.x = new Float64Array(vectorNorm ? 0 : this.cols);
    this.d = new Float64Array(vectorNorm ? 0 : this.rows);
    this.t = new Float64Array(vectorNorm ? 0 : this.cols);
    const make = (n: number) => (job.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));
    this.uNew = make(vectorNorm ? 0 : this.rows);
    this.vNew = make(vectorNorm ? 0 : this.cols);
  }

  run(): LayerOutcome {
    const outcome: LayerOutcome = { sigma: 0, status: LayerStatus.Normalized, iterationsRun: 0, converged: false, uNew: null, vNew: null };
    const job = this.job;
    let sigma: number;
    if (this.op !== null && maxAbs(this.w).nonFinite >= 0) {
      // A convolution skips the taps that only ever meet padding, so a NaN there would never reach σ; the weight is
      // refused as a whole, as the native backend refuses it.
      sigma = NaN;
    } else if (this.layer.vectorNorm) {
      sigma = norm2(this.w, this.w.length);
      outcome.converged = true;
    } else if (job.tolerance >= 0) {
      sigma = this.converge(outcome);
    } else if (job.iterations === 0) {
      sigma = this.evaluate();
    } else {
      sigma = job.legacy ? this.fixedLegacy() : this.fixedDefault();
      outcome.iterationsRun = job.iterations;
    }
    const rounded = job.dtype === 'float32' ? Math.fround(sigma) : sigma;
    outcome.sigma = rounded;
    if (!Number.isFinite(rounded)) outcome.status = LayerStatus.NonFinite;
    else if (Math.abs(rounded) <= job.eps) outcome.status = LayerStatus.BelowEps;
    outcome.uNew = this.uNew;
    outcome.vNew = this.vNew;
    return outcome;
  }

  /** Eval mode: σ = u·(W v), one pass. */
  private evaluate(): number {
    this.loadX(this.layer.v);
    this.matvec();
    const nd = norm2(this.d, this.rows);
    let dot = 0;
    for (let r = 0; r < this.rows; r++) dot += this.layer.u[r] * this.d[r];
    return Number.isFinite(nd) ? dot : NaN;
  }

  private fixedDefault(): number {
    this.loadX(this.layer.v);
    let nt = 0;
    for (let j = 0; j < this.job.iterations; j++) {
      this.sweep();
      nt = this.updateV(this.updateU(norm2(this.d, this.rows)));
      if (!Number.isFinite(nt)) return NaN;
    }
    return nt * (nt / clampNorm(nt, this.job.eps)); // u·(W v) = (Wᵀu)·v
  }

  private fixedLegacy(): number {
    const { job, rows } = this;
    for (let r = 0; r < rows; r++) this.d[r] = this.layer.u[r];
    this.transposeOfD();
    if (!Number.isFinite(this.updateV(1))) return NaN;
    let sigma = 0;
    for (let j = 0; j < job.iterations; j++) {
      const last = j + 1 === job.iterations;
      if (last) this.matvec();
      else this.sweep();
      const nd = norm2(this.d, rows);
      const denU = this.updateU(nd);
      if (!Number.isFinite(denU)) return NaN;
      sigma = nd * (nd / denU);
      if (!last && !Number.isFinite(this.updateV(denU))) return NaN;
    }
    return sigma;
  }

  /**
   * One-shot estimate with exact normalisation, so σ(cW) = |c|σ(W) at any scale. x is kept at v/σ rather than v, so
   * d = W x stays near 1 and t = Wᵀd near σ: neither over- nor underflows, whatever W's scale.
   */
  private converge(outcome: LayerOutcome): number {
    const { rows, cols, x } = this;
    this.loadX(this.layer.v);
    let previous = 0;
    let sigma = 0;
    for (let j = 1; j <= this.job.iterations; j++) {
      this.sweep();
      let nd = norm2(this.d, rows);
      if (!Number.isFinite(nd)) return NaN;
      outcome.iterationsRun = j;
      if (nd === 0) {
        outcome.converged = true;
        return 0;
      }
      if (j === 1) previous = nd;
      let nt = norm2(this.t, cols);
      if (j === 1 && !(Number.isFinite(nt) && nt > SAFE_MIN)) {
        // The unit start vector gave t ~ σ², out of range for float64 weights beyond 1e±150: rescale and redo.
        for (let c = 0; c < cols; c++) x[c] /= nd;
        this.sweep();
        nd = norm2(this.d, rows);
        nt = norm2(this.t, cols);
      }
      if (!Number.isFinite(nt) || !Number.isFinite(nd)) return NaN;
      if (nt === 0) {
        outcome.converged = true;
        return 0;
      }
      sigma = nt / nd;
      for (let r = 0; r < rows; r++) this.uNew[r] = this.d[r] / nd;
      for (let c = 0; c < cols; c++) {
        const v = this.t[c] / nt;
        this.vNew[c] = v;
        x[c] = v / sigma;
      }
      const settled = Math.abs(sigma - previous) <= this.job.tolerance * sigma;
      previous = sigma;
      if (settled) {
        outcome.converged = true;
        return sigma;
      }
    }
    return sigma;
  }

  private loadX(v: FloatArray): void {
    for (let c = 0; c < this.cols; c++) this.x[c] = v[c];
  }

  /** uNew = d / den with den = max(‖d‖, eps), where nd = ‖d‖. Returns den, or NaN when nd is not finite. */
  private updateU(nd: number): number {
    if (!Number.isFinite(nd)) return NaN;
    const den = clampNorm(nd, this.job.eps);
    for (let r = 0; r < this.rows; r++) this.uNew[r] = this.d[r] / den;
    return den;
  }

  /**
   * t ← t / denU, which makes it Wᵀu when t held Wᵀd; then vNew = t / max(‖t‖, eps) and x = vNew as stored (rounded
   * to dtype). Returns ‖t‖, or NaN when it (or denU) is not finite.
   */
  private updateV(denU: number): number {
    if (!Number.isFinite(denU)) return NaN;
    for (let c = 0; c < this.cols; c++) this.t[c] /= denU;
    const nt = norm2(this.t, this.cols);
    if (!Number.isFinite(nt)) return NaN;
    const den = clampNorm(nt, this.job.eps);
    for (let c = 0; c < this.cols; c++) {
      this.vNew[c] = this.t[c] / den;
      this.x[c] = this.vNew[c];
    }
    return nt;
  }

  /** d = W x. */
  private matvec(): void {
    const { w, rows, x, d } = this;
    const { outer, inner } = this.layer;
    if (this.op) {
      convForward(w, this.op, x, d);
      return;
    }
    d.fill(0);
    if (inner === 1) {
      for (let o = 0; o < outer; o++) {
        const xo = x[o];
        const base = o * rows;
        for (let r = 0; r < rows; r++) d[r] += w[base + r] * xo;
      }
      return;
    }
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < rows; r++) {
        const base = (o * rows + r) * inner;
        const xb = o * inner;
        let s = 0;
        for (let i = 0; i < inner; i++) s += w[base + i] * x[xb + i];
        d[r] += s;
      }
    }
  }

  /** t += Wᵀc. */
  private accumulateRows(c: Float64Array, t: Float64Array): void {
    const { w, rows } = this;
    const { outer, inner } = this.layer;
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < rows; r++) {
        const a = c[r];
        const base = (o * rows + r) * inner;
        const tb = o * inner;
        for (let i = 0; i < inner; i++) t[tb + i] += a * w[base + i];
      }
    }
  }

  /** t = Wᵀd. */
  private transposeOfD(): void {
    if (this.op) {
      convTranspose(this.w, this.op, this.d, this.t);
      return;
    }
    this.t.fill(0);
    this.accumulateRows(this.d, this.t);
  }

  /** d = W x and t = Wᵀd. Fused row by row when a row is contiguous (dim 0). */
  private sweep(): void {
    const { w, rows, cols, x, d, t } = this;
    if (this.op) {
      this.matvec();
      this.transposeOfD();
      return;
    }
    t.fill(0);
    if (this.layer.outer !== 1) {
      this.matvec();
      this.accumulateRows(d, t);
      return;
    }
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[base + c] * x[c];
      d[r] = s;
      for (let c = 0; c < cols; c++) t[c] += s * w[base + c];
    }
  }
}

/** out = w / σ. A function of its own: V8 compiles a small hot loop soon, where runJob as a whole takes long. */
function divide(out: FloatArray, w: FloatArray, sigma: number): void {
  for (let k = 0; k < w.length; k++) out[k] = w[k] / sigma;
}

function runJob(job: PowerJob): boolean {
  const n = job.layers.length;
  const outcomes: LayerOutcome[] = [];
  let allFinite = true;
  for (let i = 0; i < n; i++) {
    const outcome = new LayerRun(job.layers[i], job).run();
    outcomes.push(outcome);
    job.sigma[i] = outcome.sigma;
    job.status[i] = outcome.status;
    job.iterationsRun[i] = outcome.iterationsRun;
    job.converged[i] = outcome.converged ? 1 : 0;
    if (outcome.status === LayerStatus.NonFinite) allFinite = false;
  }
  if (!allFinite) return false;
  const iterated = job.tolerance >= 0 || job.iterations > 0;
  for (let i = 0; i < n; i++) {
    const layer = job.layers[i];
    const outcome = outcomes[i];
    if (outcome.status === LayerStatus.Normalized && iterated && !layer.vectorNorm) {
      layer.u.set(outcome.uNew!);
      layer.v.set(outcome.vNew!);
    }
    const out = layer.out;
    if (out === null) continue;
    const w = layer.weight;
    if (outcome.status === LayerStatus.Normalized) {
      divide(out, w, outcome.sigma);
    } else if (out !== w) {
      out.set(w);
    }
  }
  return true;
}

function checkJob(job: PowerJob): void {
  if (job === null || typeof job !== 'object' || !Array.isArray(job.layers)) throw new TypeError('job must be an object with layers');
  const Type = job.dtype === 'float64' ? Float64Array : job.dtype === 'float32' ? Float32Array : null;
  if (Type === null) throw new TypeError("job.dtype must be 'float32' or 'float64'");
  job.layers.forEach((layer, i) => {
    const op = layer.operator ?? null;
    if (op) checkOperatorLayer(layer, op, i);
    const size = op ? kernelShape(op).reduce((a, b) => a * b, 1) : layer.outer * layer.rows * layer.inner;
    for (const key of ['weight', 'u', 'v'] as const) {
      if (!(layer[key] instanceof Type)) throw new TypeError(`job.layers[${i}].${key} has the wrong array type`);
    }
    if (layer.weight.length !== size) throw new RangeError(`job.layers[${i}].weight has the wrong length`);
    if (layer.out !== null && (!(layer.out instanceof Type) || layer.out.length !== size)) {
      throw new RangeError(`job.layers[${i}].out has the wrong type or length`);
    }
    if (!layer.vectorNorm && (layer.u.length !== layer.rows || layer.v.length !== layer.outer * layer.inner)) {
      throw new RangeError(`job.layers[${i}].u or .v has the wrong length`);
    }
  });
}

/** An operator layer's matrix view must be its operator's: outer 1, rows the output's length, inner the input's. */
function checkOperatorLayer(layer: PowerLayer, op: ConvOperator, i: number): void {
  if (layer.vectorNorm || layer.outer !== 1 || layer.rows !== outputSize(op) || layer.inner !== inputLength(op)) {
    throw new RangeError(`job.layers[${i}] does not match its operator's input and output sizes`);
  }
}

function convApply(job: ConvApplyJob): void {
  const { weight, operator: op, input, output } = job;
  const [inLength, outLength] = job.transpose ? [outputSize(op), inputLength(op)] : [inputLength(op), outputSize(op)];
  if (weight.length !== kernelShape(op).reduce((a, b) => a * b, 1)) throw new RangeError('job.weight has the wrong length');
  if (input.length !== inLength || output.length !== outLength) throw new RangeError('job.input or job.output has the wrong length');
  if (job.transpose) convTranspose(weight, op, input, output);
  else convForward(weight, op, input, output);
}

export const jsBackend: Backend = {
  backendInfo(): NativeInfo {
    return {
      cpu: { compiled: false, simd: 'js', hardwareThreads: 1 },
      cuda: { compiled: false, runtimeVersion: 0, driverVersion: 0, devices: [], reason: 'the JS backend has no CUDA' },
    };
  },
  run(job: PowerJob): boolean {
    checkJob(job);
    return runJob(job);
  },
  convApply,
  convSpectrum: circulantSpectrum,
  runAsync(job: PowerJob): Promise<boolean> {
    // JavaScript cannot leave the event loop without a worker: this runs on it, after the current task.
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        try {
          resolve(jsBackend.run(job));
        } catch (error) {
          reject(error);
        }
      });
    });
  },
};
