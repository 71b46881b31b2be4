// Shared test utilities: the backends under test, fresh random inputs, NaN-aware comparisons, poisoning.
import * as assert from 'node:assert/strict';

import { type BackendName, type FloatArray, backendInfo } from '../../lib';
import { mulberry32 } from '../../lib/seeded-random';

/** Every backend this process can run, or those listed in SN_TEST_BACKENDS (comma-separated). */
export function backendsUnderTest(): BackendName[] {
  const available = backendInfo().available;
  const wanted = process.env.SN_TEST_BACKENDS?.split(',').map((s) => s.trim()) as BackendName[] | undefined;
  return wanted ? available.filter((b) => wanted.includes(b)) : available;
}

/**
 * Fresh random inputs each run, from a seed printed once so a failure can be replayed with SN_TEST_SEED=<seed>.
 * mulberry32: small, and independent of the library's own start-vector generator.
 */
const SEED = process.env.SN_TEST_SEED ? Number(process.env.SN_TEST_SEED) : Math.floor(Math.random() * 2 ** 31);
const next = mulberry32(SEED);
let announced = false;

export function testSeed(): number {
  if (!announced) {
    announced = true;
    console.log(`      (random inputs from SN_TEST_SEED=${SEED})`);
  }
  return SEED;
}

export function random(): number {
  testSeed();
  return next();
}

export function randomInt(lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

export function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

export function randomArray(dtype: 'float32' | 'float64', length: number, scale = 1): FloatArray {
  const a = dtype === 'float64' ? new Float64Array(length) : new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = gaussian() * scale;
  return a;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Fills an output with NaN, so a kernel that skips an element is caught. */
export function poisoned(dtype: 'float32' | 'float64', length: number): FloatArray {
  return (dtype === 'float64' ? new Float64Array(length) : new Float32Array(length)).fill(NaN);
}

export interface Tolerance {
  rtol: number;
  atol: number;
}

export const FLOAT32_TOLERANCE: Tolerance = { rtol: 1.3e-6, atol: 1e-5 }; // PyTorch's own float32 tolerances
export const FLOAT64_TOLERANCE: Tolerance = { rtol: 1e-10, atol: 1e-10 };

export function toleranceFor(dtype: 'float32' | 'float64'): Tolerance {
  return dtype === 'float64' ? FLOAT64_TOLERANCE : FLOAT32_TOLERANCE;
}

/** |actual − expected| ≤ atol + rtol·|expected| everywhere; NaN only where expected is NaN. */
export function assertClose(actual: ArrayLike<number> | number, expected: ArrayLike<number> | number, tol: Tolerance, what: string): void {
  const a = typeof actual === 'number' ? [actual] : actual;
  const e = typeof expected === 'number' ? [expected] : expected;
  assert.equal(a.length, e.length, `${what}: length ${a.length}, expected ${e.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < e.length; i++) {
    if (Number.isNaN(e[i]) || Number.isNaN(a[i])) {
      assert.ok(Number.isNaN(e[i]) && Number.isNaN(a[i]), `${what}[${i}]: ${a[i]}, expected ${e[i]}`);
      continue;
    }
    const excess = Math.abs(a[i] - e[i]) - (tol.atol + tol.rtol * Math.abs(e[i]));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (worst >= 0) {
    assert.fail(`${what}[${worst}]: ${a[worst]}, expected ${e[worst]} (rtol ${tol.rtol}, atol ${tol.atol})`);
  }
}

/** Byte-for-byte equality of typed arrays (NaN payloads included). */
export function assertSameBytes(actual: ArrayBufferView, expected: ArrayBufferView, what: string): void {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const e = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  assert.ok(a.equals(e), `${what} differs byte for byte`);
}

/** A copy of a typed array, to compare against later. */
export function snapshot<T extends FloatArray>(a: T): T {
  return a.slice() as T;
}
