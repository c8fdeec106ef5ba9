/**
 * How kiln's logits are held against llama.cpp's. llama.cpp gives probabilities, not logits, so
 * both sides are compared as log-probabilities (log-softmax over the whole vocabulary).
 *
 * The error of one entry is |kiln − llama.cpp| / max(|llama.cpp|, 1): relative for the usual
 * log-probs (around −ln vocab ≈ −5.7), absolute for the likely tokens whose log-prob nears 0 —
 * there a relative error would divide by ~0, while the absolute error is still that of the logits.
 */

/** Log-softmax of each row of a row-major [rows, vocab] array, in float64. */
export function logSoftmaxRows(logits: ArrayLike<number>, vocab: number): Float64Array[] {
  const rows: Float64Array[] = [];
  for (let r = 0; r * vocab < logits.length; r++) {
    const row = Float64Array.from({ length: vocab }, (_, i) => logits[r * vocab + i]!);
    let m = -Infinity;
    for (const v of row) m = Math.max(m, v);
    let s = 0;
    for (const v of row) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    rows.push(row.map((v) => v - lse));
  }
  return rows;
}

/** Below this log-prob llama.cpp's f32 probability may have underflowed to 0 (ln 1e-38 ≈ −87.5). */
const UNDERFLOW = -80;

/**
 * The largest error (see above) between two log-prob rows. Where llama.cpp reports p = 0
 * (−Infinity), kiln must agree that the token is below the underflow line; otherwise the error is
 * Infinity.
 */
export function maxLogProbError(kiln: Float64Array, cpp: Float64Array): number {
  if (kiln.length !== cpp.length) throw new Error(`vocabularies differ: kiln ${kiln.length}, llama.cpp ${cpp.length}`);
  let worst = 0;
  for (let i = 0; i < kiln.length; i++) {
    const a = kiln[i]!;
    const b = cpp[i]!;
    if (b === -Infinity) {
      if (!(a < UNDERFLOW)) return Infinity;
      continue;
    }
    const e = Math.abs(a - b) / Math.max(Math.abs(b), 1);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/** The index of the largest value (the lowest among equals). */
export function argmaxOf(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
