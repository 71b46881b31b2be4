// Argument checks for the public API. Each throws a TypeError (wrong kind of value) or a RangeError (right kind,
// wrong value) whose message starts with the argument's name, and each runs before anything is modified.
import type { FloatArray } from '../binding';

/** The element type of weights, `out`, u and v: Float32Array or Float64Array. */
export type DType = 'float32' | 'float64';

export function dtypeOf(array: FloatArray): DType {
  return array instanceof Float64Array ? 'float64' : 'float32';
}

export function arrayOfDtype(dtype: DType, length: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
}

/** A short description of a value's kind, for messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an Array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** True when the view's ArrayBuffer was transferred or detached. */
export function isDetached(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  // Node 20 has no ArrayBuffer.prototype.detached: a detached buffer reads as empty.
  return buffer.byteLength === 0 && view.byteOffset === 0 && view.byteLength === 0;
}

export function checkFloatArray(name: string, value: unknown, dtype?: DType): FloatArray {
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new TypeError(`${name} must be a Float32Array or Float64Array, got ${describe(value)}`);
  }
  if (isDetached(value)) throw new TypeError(`${name} is backed by a detached ArrayBuffer`);
  if (dtype !== undefined && dtypeOf(value) !== dtype) {
    const wanted = dtype === 'float64' ? 'Float64Array' : 'Float32Array';
    throw new TypeError(`${name} must be a ${wanted} (dtype '${dtype}'), got a ${value.constructor.name}`);
  }
  return value;
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${name} must be an object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Rejects misspelt options rather than silently ignoring them. */
export function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !known.includes(key)) {
      throw new TypeError(`${name}.${key} is not a known option (known: ${known.join(', ')})`);
    }
  }
}

export function checkShape(name: string, value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(`${name} must be a non-empty array of positive integers, got ${describe(value)}`);
  }
  let product = 1;
  for (let i = 0; i < value.length; i++) {
    const n = value[i];
    if (typeof n !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${describe(n)}`);
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name}[${i}] must be a positive safe integer, got ${n}`);
    product *= n;
    if (!Number.isSafeInteger(product)) throw new RangeError(`${name} [${value.join(', ')}] has too many elements`);
  }
  return value.slice();
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function checkWeight(name: string, value: unknown, shape: readonly number[], dtype?: DType): FloatArray {
  const weight = checkFloatArray(name, value, dtype);
  const count = elementCount(shape);
  if (weight.length !== count) {
    throw new RangeError(`${name} has ${weight.length} elements but shape [${shape.join(', ')}] needs ${count}`);
  }
  return weight;
}

/** dim in [-ndim, ndim), returned in [0, ndim). */
export function checkDim(name: string, value: unknown, ndim: number): number {
  if (value === undefined) return 0;
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < -ndim || value >= ndim) {
    throw new RangeError(`${name} must be an integer in [${-ndim}, ${ndim - 1}] for a ${ndim}-D weight, got ${value}`);
  }
  return value < 0 ? value + ndim : value;
}

export function checkInteger(name: string, value: unknown, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export const MAX_ITERATIONS = 2 ** 31 - 1;
export const MAX_THREADS = 1024;

export function checkNonNegative(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!(value >= 0) || !Number.isFinite(value)) throw new RangeError(`${name} must be a finite number >= 0, got ${value}`);
  return value;
}

export function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkDtype(name: string, value: unknown): DType {
  if (value === undefined) return 'float32';
  if (value !== 'float32' && value !== 'float64') {
    throw new TypeError(`${name} must be 'float32' or 'float64', got ${describe(value)}`);
  }
  return value;
}

/**
 * How float32 products are summed: 'mixed' (float32 partial sums of at most 16 products per lane, combined in
 * float64) or 'float64' (every product accumulated in float64).
 */
export type Precision = 'mixed' | 'float64';

export function checkPrecision(name: string, value: unknown): Precision {
  if (value === undefined) return 'mixed';
  if (value !== 'mixed' && value !== 'float64') {
    throw new RangeError(`${name} must be 'mixed' or 'float64', got ${describe(value)}`);
  }
  return value;
}

export function checkSeed(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer, got ${describe(value)}`);
  if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be a safe integer, got ${value}`);
  return value;
}

/**
 * A user-supplied u or v: any array-like of finite numbers with at least one non-zero, copied into `dtype`. The copy
 * is the library's own, so later changes to the caller's array do not reach the state.
 */
export function checkStartVector(name: string, value: unknown, length: number, dtype: DType): FloatArray {
  const ok = Array.isArray(value) || value instanceof Float32Array || value instanceof Float64Array;
  if (!ok) throw new TypeError(`${name} must be an array or Float32Array/Float64Array, got ${describe(value)}`);
  const source = value as ArrayLike<unknown>;
  if (ArrayBuffer.isView(source) && isDetached(source)) throw new TypeError(`${name} is backed by a detached ArrayBuffer`);
  if (source.length !== length) throw new RangeError(`${name} must have ${length} elements, got ${source.length}`);
  const copy = arrayOfDtype(dtype, length);
  let nonZero = false;
  for (let i = 0; i < length; i++) {
    const x = source[i];
    if (typeof x !== 'number') throw new TypeError(`${name}[${i}] must be a number, got ${describe(x)}`);
    if (!Number.isFinite(x)) throw new RangeError(`${name}[${i}] must be finite, got ${x}`);
    copy[i] = x;
    if (copy[i] !== 0) nonZero = true;
  }
  if (length > 0 && !nonZero) throw new RangeError(`${name} must not be all zeros`);
  return copy;
}

interface Span {
  name: string;
  array: FloatArray;
  writes: boolean;
  layer: number;
}

/**
 * Arrays a call writes must not overlap anything else it reads or writes, except that a layer may be divided in
 * place (its out is exactly its weight).
 */
export function checkOverlaps(spans: readonly Span[]): void {
  if (spans.length <= 8) {
    // A step on a layer or two: every pair, which costs less than the map below.
    for (let j = 1; j < spans.length; j++) {
      for (let i = 0; i < j; i++) {
        if (spans[i].array.buffer === spans[j].array.buffer) return checkOverlapsByBuffer(spans);
      }
    }
    return;
  }
  checkOverlapsByBuffer(spans);
}

function checkOverlapsByBuffer(spans: readonly Span[]): void {
  const byBuffer = new Map<ArrayBufferLike, Span[]>();
  for (const span of spans) {
    const list = byBuffer.get(span.array.buffer);
    if (list) list.push(span);
    else byBuffer.set(span.array.buffer, [span]);
  }
  for (const list of byBuffer.values()) {
    if (list.length < 2) continue;
    list.sort((a, b) => a.array.byteOffset - b.array.byteOffset);
    // Each span against those that start before it ends: a sweep over the sorted starts.
    for (let i = 0; i < list.length; i++) {
      const a = list[i];
      const end = a.array.byteOffset + a.array.byteLength;
      for (let j = i + 1; j < list.length && list[j].array.byteOffset < end; j++) {
        const b = list[j];
        if (!a.writes && !b.writes) continue;
        const sameRange = a.array.byteOffset === b.array.byteOffset && a.array.byteLength === b.array.byteLength;
        if (sameRange && a.layer === b.layer && a.name !== b.name) continue; // in place
        const what = sameRange && a.layer === b.layer ? 'is the same array as' : 'overlaps';
        throw new RangeError(`${b.name} ${what} ${a.name}`);
      }
    }
  }
}

/** A step's or warm-up's arrays, checked: the weights, and where each layer's W/σ goes (null: nowhere). */
export interface Targets {
  weights: FloatArray[];
  outs: (FloatArray | null)[];
}

/**
 * @param dtype what every weight must be; undefined accepts either, and then each out must match its weight
 * @param weightNames how errors name each weight ("weight", "weights[2]")
 * @param mode where each layer's W/σ goes: 'in-place' into its weight (step), 'none' nowhere (warm-up), or
 * `outs[i]`, which errors name `names(i)`
 */
export function checkTargets(
  layers: readonly { shape: readonly number[] }[],
  dtype: DType | undefined,
  weights: readonly unknown[],
  weightNames: (i: number) => string,
  mode: 'in-place' | 'none' | { outs: readonly unknown[]; names: (i: number) => string },
): Targets {
  const checked = layers.map((layer, i) => checkWeight(weightNames(i), weights[i], layer.shape, dtype));
  let outs: (FloatArray | null)[];
  if (mode === 'none') outs = checked.map(() => null);
  else if (mode === 'in-place') outs = checked;
  else {
    outs = layers.map((_, i) => {
      const out = checkFloatArray(mode.names(i), mode.outs[i], dtypeOf(checked[i]));
      if (out.length !== checked[i].length) {
        throw new RangeError(`${mode.names(i)} has ${out.length} elements but the weight has ${checked[i].length}`);
      }
      return out;
    });
  }
  const spans = checked.map((array, i) => ({ name: weightNames(i), array, writes: mode === 'in-place', layer: i }));
  if (typeof mode === 'object') {
    outs.forEach((array, i) => spans.push({ name: mode.names(i), array: array!, writes: true, layer: i }));
  }
  checkOverlaps(spans);
  return { weights: checked, outs };
}
