import type { DType } from './dtype.js';

/**
 * A concrete tensor on the host: what callers bind to inputs, params and state, and what the
 * interpreter and backends return. Values are float64 whatever the dtype, so that the reference
 * interpreter loses nothing; i32 tensors hold integers.
 */
export interface HostTensor {
  readonly dtype: DType;
  readonly shape: number[];
  readonly data: Float64Array;
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** A tensor of `shape`, zero-filled, or holding `data` (row-major; its length must match). */
export function hostTensor(dtype: DType, shape: readonly number[], data?: ArrayLike<number>): HostTensor {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new Error(`hostTensor: bad shape [${shape.join(', ')}]`);
  const n = numelOf(shape);
  if (data !== undefined && data.length !== n)
    throw new Error(`hostTensor: ${data.length} values for shape [${shape.join(', ')}] (${n} elements)`);
  const buf = data === undefined ? new Float64Array(n) : Float64Array.from(data);
  if (dtype === 'i32' && !buf.every(Number.isInteger)) throw new Error('hostTensor: i32 values must be integers');
  return { dtype, shape: [...shape], data: buf };
}

export type Nested = number | readonly Nested[];

/** A tensor from nested arrays, `[[1, 2], [3, 4]]` → shape [2, 2]. Ragged arrays are rejected. */
export function hostFromNested(dtype: DType, nested: Nested): HostTensor {
  const shape: number[] = [];
  for (let v: Nested = nested; Array.isArray(v); v = (v as readonly Nested[])[0]!) shape.push(v.length);
  const flat: number[] = [];
  const walk = (v: Nested, depth: number): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number') throw new Error('hostFromNested: ragged array');
      flat.push(v);
    } else {
      if (!Array.isArray(v) || v.length !== shape[depth]) throw new Error('hostFromNested: ragged array');
      for (const x of v as readonly Nested[]) walk(x, depth + 1);
    }
  };
  walk(nested, 0);
  return hostTensor(dtype, shape, flat);
}

/**
 * The largest elementwise relative error of `a` against the reference `b`:
 * max |a − b| / max(|b|, floor).
 *
 * The floor keeps elements whose true value is (nearly) zero from dividing by ~0; below it the
 * error is in effect absolute. The default 1e-6 sits a little above f32's epsilon (1.2e-7), so
 * an f32 result that is exact up to rounding scores ~1e-7 everywhere, including near zero. Results
 * computed by cancellation (a long dot product summing to ~0) carry absolute error at the scale
 * of their terms, not of their value; compare those with a floor at that scale.
 *
 * Equal infinities and NaN against NaN count as equal; any other non-finite mismatch is Infinity.
 * Different shapes are a caller bug and throw.
 */
export function maxRelError(a: HostTensor, b: HostTensor, floor = 1e-6): number {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i]))
    throw new Error(`maxRelError: shapes differ: [${a.shape.join(', ')}] vs [${b.shape.join(', ')}]`);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i]!;
    const y = b.data[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const e = Math.abs(x - y) / Math.max(Math.abs(y), floor);
    worst = Number.isNaN(e) ? Infinity : Math.max(worst, e);
  }
  return worst;
}
