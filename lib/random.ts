// Seeded start vectors, made here in TypeScript for every backend, so one seed gives the same bits everywhere.
import { randomInt } from 'node:crypto';

import type { FloatArray } from '../binding';
import { type DType, arrayOfDtype } from './validate';

/** A random seed for callers that give none, as PyTorch draws u and v from its global generator. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 48 - 1);
}

// splitmix32: spreads a seed's bits over the generator's state.
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128**, seeded from a safe integer; deterministic on every platform. */
class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    const low = seed % 2 ** 32;
    const high = Math.floor(seed / 2 ** 32);
    const mix = { s: (low ^ Math.imul(high, 0x27d4eb2d)) | 0 };
    this.s0 = splitmix32(mix);
    this.s1 = splitmix32(mix);
    this.s2 = splitmix32(mix) ^ high;
    this.s3 = splitmix32(mix);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in (0, 1), 53 bits. */
  nextOpenUnit(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  }

  /** Standard normal (Box–Muller). */
  nextNormal(): number {
    const r = Math.sqrt(-2 * Math.log(this.nextOpenUnit()));
    return r * Math.cos(2 * Math.PI * this.nextOpenUnit());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function normalizedGaussian(rng: Xoshiro128, length: number, dtype: DType): FloatArray {
  const values = new Float64Array(length);
  let sumSquares = 0;
  for (let i = 0; i < length; i++) {
    values[i] = rng.nextNormal();
    sumSquares += values[i] * values[i];
  }
  const norm = Math.sqrt(sumSquares);
  const out = arrayOfDtype(dtype, length);
  for (let i = 0; i < length; i++) out[i] = values[i] / norm;
  return out;
}

// The start vectors of recent (seed, lengths, dtype) keys. Drawing costs a logarithm and a cosine per element, about
// 30 µs for a 64×64×3×3 layer, which is more than a one-shot call's whole native step; a server or a training loop
// asks for the same few again and again (the one-shot functions' default seed is 0). Least recently used first out;
// callers always get copies.
const CACHE_ENTRIES = 64;
const CACHE_MAX_ELEMENTS = 1 << 16;
const cache = new Map<string, { u: FloatArray; v: FloatArray }>();

/** Unit Gaussian start vectors u (uLength) and then v (vLength) from one seed, as PyTorch draws u then v. */
export function startVectors(seed: number, uLength: number, vLength: number, dtype: DType): { u: FloatArray; v: FloatArray } {
  const cacheable = uLength + vLength <= CACHE_MAX_ELEMENTS;
  const key = `${seed}:${uLength}:${vLength}:${dtype}`;
  let vectors = cacheable ? cache.get(key) : undefined;
  if (vectors === undefined) {
    const rng = new Xoshiro128(seed);
    const u = normalizedGaussian(rng, uLength, dtype);
    const v = normalizedGaussian(rng, vLength, dtype);
    if (!cacheable) return { u, v };
    vectors = { u, v };
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  } else {
    cache.delete(key);
  }
  cache.set(key, vectors);
  return { u: vectors.u.slice(), v: vectors.v.slice() };
}
