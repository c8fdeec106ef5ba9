/**
 * The counter-based hash behind `dropout_mask` (graph/ops.ts), in one place so that the
 * interpreter, every backend and the tests share one definition.
 *
 * All arithmetic is on uint32: `Math.imul` multiplies modulo 2³², `>>> 0` reads the bits back as
 * unsigned. An i32 seed or step is taken as its two's-complement bit pattern (−1 is 0xffffffff).
 * Nothing here depends on any state: element i of a mask is a pure function of (seed, step,
 * stream, i), so a kernel may compute its elements in any order, in parallel.
 */

/** murmur3's 32-bit finaliser: h ^= h>>>16; h *= 0x85ebca6b; h ^= h>>>13; h *= 0xc2b2ae35; h ^= h>>>16. */
export function fmix32(h: number): number {
  h = h >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * hash(seed, step, stream, i), a uint32:
 * h = fmix(i ^ 0x9e3779b9); h = fmix(h ^ stream·0x632be5ab); h = fmix(h ^ step); h = fmix(h ^ seed).
 */
export function dropoutHash(seed: number, step: number, stream: number, i: number): number {
  let h = fmix32((i ^ 0x9e3779b9) >>> 0);
  h = fmix32((h ^ Math.imul(stream, 0x632be5ab)) >>> 0);
  h = fmix32((h ^ step) >>> 0);
  h = fmix32((h ^ seed) >>> 0);
  return h;
}

/** The hash's top 24 bits, (h >>> 8): u = that / 2²⁴ is the uniform draw in [0, 1). */
export function dropoutBits(seed: number, step: number, stream: number, i: number): number {
  return dropoutHash(seed, step, stream, i) >>> 8;
}

/** u = (hash >>> 8) / 2²⁴, a float in [0, 1) that f32 holds exactly. */
export function dropoutUniform(seed: number, step: number, stream: number, i: number): number {
  return dropoutBits(seed, step, stream, i) / 16777216;
}

/**
 * The integer threshold equivalent to u ≥ p: (hash >>> 8) ≥ ⌈p·2²⁴⌉. p·2²⁴ is exact in float64,
 * so comparing integers gives the same keep/drop decision on every backend, whatever precision
 * it holds p in (comparing u with p rounded to f32 would flip elements near p).
 */
export function dropoutThreshold(p: number): number {
  return Math.ceil(p * 16777216);
}

/** Whether element i is kept (u ≥ p). */
export function dropoutKeep(seed: number, step: number, stream: number, i: number, p: number): boolean {
  return dropoutBits(seed, step, stream, i) >= dropoutThreshold(p);
}

/** The mask's value at element i: 1/(1 − p) if kept, else 0. */
export function dropoutValue(seed: number, step: number, stream: number, i: number, p: number): number {
  return dropoutKeep(seed, step, stream, i, p) ? 1 / (1 - p) : 0;
}
