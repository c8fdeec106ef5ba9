/**
 * When a backend's float32 result counts as the interpreter's float64 one. An element passes when
 * |got − want| ≤ tol · max(|want|, floor), where the floor is a fraction of the tensor's largest
 * finite magnitude: float32 sums and products carry absolute error at the scale of their terms, so
 * an element that came out near zero by cancellation is judged against that scale, not its own.
 * Equal infinities and NaN against NaN agree; a reference beyond float32's range agrees with an
 * infinity of its sign (float32 cannot hold it).
 */
const F32_MAX = 3.4028234663852886e38;
/** The floor, as a fraction of the largest magnitude in the reference tensor. */
const FLOOR_FRACTION = 1e-2;

export interface Mismatch {
  readonly index: number;
  readonly got: number;
  readonly want: number;
  /** The element's error in units of the allowed error (> 1 fails). */
  readonly ratio: number;
}

/** The worst element beyond tolerance, or undefined when all agree. Length differences count as a mismatch at the first missing index. */
export function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): Mismatch | undefined {
  if (got.length !== want.length) {
    const index = Math.min(got.length, want.length);
    return { index, got: got[index] ?? NaN, want: want[index] ?? NaN, ratio: Infinity };
  }
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    const w = Math.abs(want[i]!);
    if (Number.isFinite(w) && w > scale) scale = w;
  }
  const floor = Math.max(1e-6, FLOOR_FRACTION * scale);
  let worst: Mismatch | undefined;
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (g === w || (Number.isNaN(g) && Number.isNaN(w))) continue;
    if (Math.abs(w) > F32_MAX && Number.isFinite(w) && g === Math.sign(w) * Infinity) continue;
    const ratio = Math.abs(g - w) / (tol * Math.max(Math.abs(w), floor));
    const r = Number.isNaN(ratio) ? Infinity : ratio;
    if (r > 1 && (!worst || r > worst.ratio)) worst = { index: i, got: g, want: w, ratio: r };
  }
  return worst;
}

/** `[0.1, -2, 3, …]`: the first few values, for messages. */
export function preview(xs: ArrayLike<number>, n = 6): string {
  const shown = Array.from({ length: Math.min(n, xs.length) }, (_, i) => Number(xs[i]!.toPrecision(6)));
  return `[${shown.join(', ')}${xs.length > n ? `, … (${xs.length} values)` : ''}]`;
}
