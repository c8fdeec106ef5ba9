/**
 * The seeded generators kiln uses wherever results must repeat: random weights, sampling, fuzz
 * inputs. mulberry32 (a 32-bit state advanced by a Weyl step, then mixed) is small, fast and
 * passes the usual statistical batteries well enough for this; Box–Muller turns two uniforms into
 * one normal sample. The same seed gives the same sequence on every platform: only 32-bit integer
 * arithmetic (Math.imul, >>>) and IEEE doubles are involved.
 */

/** Uniform floats in [0, 1) from a 32-bit seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller; 1 − u keeps the logarithm's argument above 0). */
export function normalSampler(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}
