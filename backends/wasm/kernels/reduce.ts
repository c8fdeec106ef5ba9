/**
 * sum, mean, amax along an axis: f64 accumulation in index order, as the interpreter does.
 *  - along the last axis, lane by lane (each lane is contiguous).
 *  - along any other axis, 8 lanes side by side in four f64x2 accumulators (then 4, then one by
 *    one): each step along the axis reads 8 contiguous floats. Lane by lane, a sum over the
 *    sequence axis of [seq, vocab] read one float per cache line (and, at 32000 columns, per page)
 *    on every step. Each lane still adds in index order, so the results are the same bits.
 */
import type { Expr } from '../fn.js';
import { demote2, promoteHi, promoteLo } from './f64x2.js';
import type { WasmKernel } from './kernel.js';
import { axisOf, splitAt } from './kernel.js';
import { laneAt, lanes } from './lanes.js';

export const reduceKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const op = c.node.op;
  const ax = axisOf(c.node, shape.length);
  const init = op === 'amax' ? -Infinity : 0;
  const step1 = (acc: Expr, x: Expr): Expr => (op === 'amax' ? m.f64.max(acc, x) : m.f64.add(acc, x));
  const k = f.local(b.i32);
  if (ax === shape.length - 1) {
    const acc = f.local(b.f64);
    return lanes(c, shape, ax, 1, (x0, o0, len, stride) => {
      const x = m.f64.promote(m.f32.load(0, 4, laneAt(c, c.in(0), x0, f.get(k), stride)));
      const result = op === 'mean' ? m.f64.div(f.get(acc), m.f64.convert_s.i32(len())) : f.get(acc);
      return [
        f.set(acc, m.f64.const(init)),
        f.for(k, m.i32.const(0), len, 1, [f.set(acc, step1(f.get(acc), x))]),
        m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(o0(), m.i32.const(2))), m.f32.demote(result)),
      ];
    });
  }
  const I = (v: number) => m.i32.const(v);
  const sp = () => splitAt(c, shape, ax);
  const [o, j, p, end8, end4, len, inner] = Array.from({ length: 7 }, () => f.local(b.i32)) as [number, number, number, number, number, number, number];
  const [v, a0, a1, a2, a3, n2] = Array.from({ length: 6 }, () => f.local(b.v128)) as [number, number, number, number, number, number];
  const acc = f.local(b.f64);
  const step2 = (a: number, x: Expr): Expr => f.set(a, op === 'amax' ? m.f64x2.max(f.get(a), x) : m.f64x2.add(f.get(a), x));
  const fin2 = (a: number): Expr => (op === 'mean' ? m.f64x2.div(f.get(a), f.get(n2)) : f.get(a));
  /** x[o, k, j + d] and out[o, j + d] (bytes); p = the lane block's first element in x */
  const xAt = (d: number) => m.i32.add(m.i32.add(c.in(0), m.i32.shl(m.i32.add(f.get(p), m.i32.mul(f.get(k), f.get(inner))), I(2))), I(4 * d));
  const outAt = (d: number) => m.i32.add(m.i32.add(c.out(), m.i32.shl(m.i32.add(m.i32.mul(f.get(o), f.get(inner)), f.get(j)), I(2))), I(4 * d));
  const first = () => f.set(p, m.i32.add(m.i32.mul(f.get(o), m.i32.mul(f.get(len), f.get(inner))), f.get(j)));
  const zero = (a: number) => f.set(a, m.f64x2.splat(m.f64.const(init)));
  return [
    f.set(len, sp()[1]),
    f.set(inner, sp()[2]),
    f.set(n2, m.f64x2.splat(m.f64.convert_s.i32(f.get(len)))),
    f.set(end8, m.i32.and(f.get(inner), I(~7))),
    f.set(end4, m.i32.and(f.get(inner), I(~3))),
    f.for(o, I(0), () => sp()[0], 1, [
      f.for(j, I(0), f.at(end8), 8, [
        first(),
        zero(a0),
        zero(a1),
        zero(a2),
        zero(a3),
        f.for(k, I(0), f.at(len), 1, [
          f.set(v, m.v128.load(0, 4, xAt(0))),
          step2(a0, promoteLo(c, f.get(v))),
          step2(a1, promoteHi(c, f.get(v))),
          f.set(v, m.v128.load(0, 4, xAt(4))),
          step2(a2, promoteLo(c, f.get(v))),
          step2(a3, promoteHi(c, f.get(v))),
        ]),
        m.v128.store(0, 4, outAt(0), demote2(c, fin2(a0), fin2(a1))),
        m.v128.store(0, 4, outAt(4), demote2(c, fin2(a2), fin2(a3))),
      ]),
      f.for(j, f.get(end8), f.at(end4), 4, [
        first(),
        zero(a0),
        zero(a1),
        f.for(k, I(0), f.at(len), 1, [f.set(v, m.v128.load(0, 4, xAt(0))), step2(a0, promoteLo(c, f.get(v))), step2(a1, promoteHi(c, f.get(v)))]),
        m.v128.store(0, 4, outAt(0), demote2(c, fin2(a0), fin2(a1))),
      ]),
      f.for(j, f.get(end4), f.at(inner), 1, [
        first(),
        f.set(acc, m.f64.const(init)),
        f.for(k, I(0), f.at(len), 1, [f.set(acc, step1(f.get(acc), m.f64.promote(m.f32.load(0, 4, xAt(0)))))]),
        m.f32.store(0, 4, outAt(0), m.f32.demote(op === 'mean' ? m.f64.div(f.get(acc), m.f64.convert_s.i32(f.get(len))) : f.get(acc))),
      ]),
    ]),
  ];
};
