/**
 * The lane walk shared by reductions and softmax: for every index outside `axis`, the lane of
 * `len` elements `stride` apart. `body` gets the lane's first element (in x, in out) as thunks.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Expr, Thunk } from '../fn.js';
import { splitAt, type WasmCtx } from './kernel.js';

export function lanes(c: WasmCtx, shape: readonly Dim[], axis: number, outLen: 'same' | 1, body: (x0: Thunk, o0: Thunk, len: Thunk, stride: Thunk) => Expr[]): Expr[] {
  const { m, f, b } = c;
  const [o, i] = [f.local(b.i32), f.local(b.i32)];
  const sp = () => splitAt(c, shape, axis);
  const len = () => sp()[1];
  const inner = () => sp()[2];
  const x0 = () => m.i32.add(m.i32.mul(f.get(o), m.i32.mul(len(), inner())), f.get(i));
  const o0 = outLen === 1 ? () => m.i32.add(m.i32.mul(f.get(o), inner()), f.get(i)) : x0;
  return [f.for(o, m.i32.const(0), () => sp()[0], 1, [f.for(i, m.i32.const(0), inner, 1, body(x0, o0, len, inner))])];
}

/** f32 element k of a lane as f64: base + (first + k·stride)·4. */
export const laneAt = (c: WasmCtx, base: Expr, first: Thunk, k: Expr, stride: Thunk): Expr =>
  c.m.i32.add(base, c.m.i32.shl(c.m.i32.add(first(), c.m.i32.mul(k, stride())), c.m.i32.const(2)));
