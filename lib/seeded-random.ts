// mulberry32: a small, fast 32-bit seeded generator, for reproducible draws in the tests, the benchmarks and the
// example models. Not the library's start-vector generator (random.ts), and not exported from the package index:
// it lives in lib/ only because the examples ship in the package and cannot import from test/.

/** A generator of uniform numbers in [0, 1), 32 bits each; the same seed gives the same sequence everywhere. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
