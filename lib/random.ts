// Seeded randomness for the facade's own choices (dataset splits, stream order), independent of libtorch.

/** A 32-bit PRNG (mulberry32) from a seed; `next()` gives floats in [0, 1). */
export function prng(seed: number): () => number {
  let t = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** 0..n-1 in a seeded order (Fisher-Yates). */
export function permutation(n: number, seed: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const next = prng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const tmp = out[i];
    out[i] = out[j];
    out[j] = tmp;
  }
  return out;
}

/** Mixes a seed with a counter (an epoch, a purpose) into a new 53-bit seed. */
export function deriveSeed(seed: number, counter: number): number {
  const a = prng(seed + counter * 0x9e3779b1);
  return Math.floor(a() * 2 ** 21) * 2 ** 32 + Math.floor(a() * 2 ** 32);
}
