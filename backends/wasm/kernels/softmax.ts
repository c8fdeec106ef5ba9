/**
 * softmax along an axis: the lane's max, then e = exp(x − max) (stored in the result as f32)
 * summed in f64, then each e divided by the sum. exp is exp64 (exp.ts), in the module.
 *  - along the last axis, softmax_row (also fused causal_softmax's): four elements at a time — the max in
 *    f32x4; x − max in f64 and exp in f32 four lanes at a time (expF32: within 2 ulp of the f64
 *    exp rounded to f32); two partial sums in f64. Four with a lane below −87 (a causal mask's
 *    −∞ among them) take exp two f64 lanes at a time inline (bit for bit exp64; −∞ gives 0 by a
 *    select), and any other element outside exp's fast range sends its four to exp64x2. The f64
 *    route alone took 0.44 of softmax's 0.78 ms per stories110M prefill layer.
 *  - along any other axis, element by element.
 */
import { type Expr, Fn } from '../fn.js';
import { exp2Inline, exp64, exp64x2, expF32, expF32Mask, expRangeMask } from './exp.js';
import { demote2, promoteHi, promoteLo } from './f64x2.js';
import type { WasmCtx, WasmKernel } from './kernel.js';
import { axisOf } from './kernel.js';
import { laneAt, lanes } from './lanes.js';

/**
 * Declare `softmax_row(x, out, len, keep, scale)`: over `len` contiguous f32, the softmax of the
 * first `keep` values times `scale` (each product rounded to f32, as a mul kernel stores it), and
 * zeros after them; with `keep` 0, NaN throughout (the softmax of a row of −∞). The plain softmax
 * passes keep = len and scale 1 (x·1 is x, ±∞ and NaN included).
 */
export function softmaxRow(c: WasmCtx): string {
  const scalar = exp64(c);
  const pair = exp64x2(c);
  return c.helper('softmax_row', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.f32]);
    const [X, O, ROW, LEN, SCALE] = [0, 1, 2, 3, 4];
    const sc = f.local(b.v128);
    const I = (v: number) => m.i32.const(v);
    const d2 = (v: number) => m.f64x2.splat(m.f64.const(v));
    const [j, end4] = [f.local(b.i32), f.local(b.i32)];
    const vl = () => f.local(b.v128);
    const [mx4, v, lo, hi, k0, r0, k1, r1, sum, mx2] = [vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl()];
    const [mx, s, e] = [f.local(b.f32), f.local(b.f64), f.local(b.f64)];
    const at = (base: number) => m.i32.add(f.get(base), m.i32.shl(f.get(j), I(2)));
    const lane = (l: number) => m.f32x4.extract_lane(f.get(mx4), l);
    // lanes in exp's range, or below −746 (exp is 0 there, as exp64 returns)
    const inRange = (x: number) => expRangeMask(c, f.at(x));
    const fastOk = (x: number) => m.v128.or(inRange(x), m.f64x2.lt(f.get(x), d2(-746)));
    const fastExp = (x: number, k: number, r: number) => {
      const clamped = () => m.f64x2.max(f.get(x), d2(-708));
      const ex = exp2Inline(c, f, clamped, k, r);
      return { pre: ex.pre, value: m.v128.bitselect(ex.value, d2(0), inRange(x)) };
    };
    const [eLo, eHi] = [fastExp(lo, k0, r0), fastExp(hi, k1, r1)];
    const e4 = expF32(c, f, lo, hi);
    const f32Ok = (x: number) => m.i64x2.all_true(expF32Mask(c, f.at(x)));
    f.finish('softmax_row', b.none, [
      m.if(m.i32.eqz(f.get(LEN)), m.block(null, [f.for(j, I(0), f.at(ROW), 1, [m.f32.store(0, 4, at(O), m.f32.const(Number.NaN))]), m.return()])),
      f.set(sc, m.f32x4.splat(f.get(SCALE))),
      f.set(end4, m.i32.and(f.get(LEN), I(~3))),
      // the max
      f.set(mx4, m.f32x4.splat(m.f32.const(-Infinity))),
      f.for(j, I(0), f.at(end4), 4, [f.set(mx4, m.f32x4.max(f.get(mx4), m.f32x4.mul(m.v128.load(0, 4, at(X)), f.get(sc))))]),
      f.set(mx, m.f32.max(m.f32.max(lane(0), lane(1)), m.f32.max(lane(2), lane(3)))),
      f.for(j, f.get(end4), f.at(LEN), 1, [f.set(mx, m.f32.max(f.get(mx), m.f32.mul(m.f32.load(0, 4, at(X)), f.get(SCALE))))]),
      // e = exp(x − max), four at a time, summed in two f64 lanes
      f.set(mx2, m.f64x2.splat(m.f64.promote(f.get(mx)))),
      f.set(sum, d2(0)),
      f.for(j, I(0), f.at(end4), 4, [
        f.set(v, m.f32x4.mul(m.v128.load(0, 4, at(X)), f.get(sc))),
        f.set(lo, m.f64x2.sub(promoteLo(c, f.get(v)), f.get(mx2))),
        f.set(hi, m.f64x2.sub(promoteHi(c, f.get(v)), f.get(mx2))),
        m.if(
          m.i32.and(f32Ok(lo), f32Ok(hi)),
          // four lanes in f32 (exact as f32 values, so the f64 sum and the store see them as they are)
          m.block(null, [...e4.pre, f.set(v, e4.value), f.set(lo, promoteLo(c, f.get(v))), f.set(hi, promoteHi(c, f.get(v)))]),
          m.if(
            m.i32.and(m.i64x2.all_true(fastOk(lo)), m.i64x2.all_true(fastOk(hi))),
            m.block(null, [...eLo.pre, ...eHi.pre, f.set(lo, eLo.value), f.set(hi, eHi.value)]),
            m.block(null, [f.set(lo, m.call(pair, [f.get(lo)], b.v128)), f.set(hi, m.call(pair, [f.get(hi)], b.v128))]),
          ),
        ),
        f.set(sum, m.f64x2.add(m.f64x2.add(f.get(sum), f.get(lo)), f.get(hi))),
        m.v128.store(0, 4, at(O), demote2(c, f.get(lo), f.get(hi))),
      ]),
      f.set(s, m.f64.add(m.f64x2.extract_lane(f.get(sum), 0), m.f64x2.extract_lane(f.get(sum), 1))),
      f.for(j, f.get(end4), f.at(LEN), 1, [
        f.set(e, m.call(scalar, [m.f64.sub(m.f64.promote(m.f32.mul(m.f32.load(0, 4, at(X)), f.get(SCALE))), m.f64x2.extract_lane(f.get(mx2), 0))], b.f64)),
        f.set(s, m.f64.add(f.get(s), f.get(e))),
        m.f32.store(0, 4, at(O), m.f32.demote(f.get(e))),
      ]),
      // each e divided by the sum (in f64, as the scalar path)
      f.set(mx2, m.f64x2.splat(f.get(s))),
      f.for(j, I(0), f.at(end4), 4, [
        f.set(v, m.v128.load(0, 4, at(O))),
        m.v128.store(0, 4, at(O), demote2(c, m.f64x2.div(promoteLo(c, f.get(v)), f.get(mx2)), m.f64x2.div(promoteHi(c, f.get(v)), f.get(mx2)))),
      ]),
      f.for(j, f.get(end4), f.at(LEN), 1, [m.f32.store(0, 4, at(O), m.f32.demote(m.f64.div(m.f64.promote(m.f32.load(0, 4, at(O))), f.get(s))))]),
      f.for(j, f.get(LEN), f.at(ROW), 1, [m.f32.store(0, 4, at(O), m.f32.const(0))]),
    ]);
  });
}

export const softmaxKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const axis = axisOf(c.node, shape.length);
  if (axis === shape.length - 1) {
    const row = softmaxRow(c);
    return lanes(c, shape, axis, 'same', (x0, _o0, len) => [
      m.call(row, [m.i32.add(c.in(0), m.i32.shl(x0(), m.i32.const(2))), m.i32.add(c.out(), m.i32.shl(x0(), m.i32.const(2))), len(), len(), m.f32.const(1)], b.none),
    ]);
  }
  const [k, mx, s, e] = [f.local(b.i32), f.local(b.f64), f.local(b.f64), f.local(b.f64)];
  return lanes(c, shape, axis, 'same', (x0, o0, len, stride) => {
    const x = () => m.f64.promote(m.f32.load(0, 4, laneAt(c, c.in(0), x0, f.get(k), stride)));
    const outAt = () => laneAt(c, c.out(), o0, f.get(k), stride);
    return [
      f.set(mx, m.f64.const(-Infinity)),
      f.for(k, m.i32.const(0), len, 1, [f.set(mx, m.f64.max(f.get(mx), x()))]),
      f.set(s, m.f64.const(0)),
      f.for(k, m.i32.const(0), len, 1, [
        f.set(e, m.call(exp64(c), [m.f64.sub(x(), f.get(mx))], b.f64)),
        f.set(s, m.f64.add(f.get(s), f.get(e))),
        m.f32.store(0, 4, outAt(), m.f32.demote(f.get(e))),
      ]),
      f.for(k, m.i32.const(0), len, 1, [m.f32.store(0, 4, outAt(), m.f32.demote(m.f64.div(m.f64.promote(m.f32.load(0, 4, outAt())), f.get(s))))]),
    ];
  });
};
