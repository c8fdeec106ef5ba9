/**
 * cross_entropy: per row of V logits, log s + (m − x[target]) with m the row's max and
 * s = Σ exp(x − m) — two terms ≥ 0, so nothing cancels. The row goes as softmax_row's does
 * (softmax.ts): the max in f32x4; x − m in f64 and exp in f32 four lanes at a time (expF32) where
 * all four lie in [−87, 88], else two f64 lanes inline (exp2Inline; −∞ gives 0) or through
 * exp64x2; the sum in two f64 lanes; log from the host's Math, once per row. A target outside
 * [0, V) fails the run (K1017), as gather's index does.
 */
import { type Expr, Fn } from '../fn.js';
import { exp2Inline, exp64, exp64x2, expF32, expF32Mask, expRangeMask } from './exp.js';
import { promoteHi, promoteLo } from './f64x2.js';
import { FAIL, type WasmCtx, type WasmKernel } from './kernel.js';

/** Declare `ce_row(x, len, t) → f64`: over `len` contiguous f32 at x, log Σ exp(x − m) + (m − x[t]). */
export function crossEntropyRow(c: WasmCtx): string {
  const scalar = exp64(c);
  const pair = exp64x2(c);
  return c.helper('ce_row', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.i32, b.i32, b.i32]);
    const [X, LEN, T] = [0, 1, 2];
    const I = (v: number) => m.i32.const(v);
    const d2 = (v: number) => m.f64x2.splat(m.f64.const(v));
    const [j, end4] = [f.local(b.i32), f.local(b.i32)];
    const vl = () => f.local(b.v128);
    const [mx4, v, lo, hi, k0, r0, k1, r1, sum, mx2] = [vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl(), vl()];
    const [mx, s] = [f.local(b.f32), f.local(b.f64)];
    const at = (k: Expr) => m.i32.add(f.get(X), m.i32.shl(k, I(2)));
    const lane = (l: number) => m.f32x4.extract_lane(f.get(mx4), l);
    const inRange = (x: number) => expRangeMask(c, f.at(x));
    const fastOk = (x: number) => m.v128.or(inRange(x), m.f64x2.lt(f.get(x), d2(-746)));
    const fastExp = (x: number, k: number, r: number) => {
      const ex = exp2Inline(c, f, () => m.f64x2.max(f.get(x), d2(-708)), k, r);
      return { pre: ex.pre, value: m.v128.bitselect(ex.value, d2(0), inRange(x)) };
    };
    const [eLo, eHi] = [fastExp(lo, k0, r0), fastExp(hi, k1, r1)];
    const e4 = expF32(c, f, lo, hi);
    const f32Ok = (x: number) => m.i64x2.all_true(expF32Mask(c, f.at(x)));
    f.finish('ce_row', b.f64, [
      f.set(end4, m.i32.and(f.get(LEN), I(~3))),
      // the max (NaN wins, as Math.max)
      f.set(mx4, m.f32x4.splat(m.f32.const(-Infinity))),
      f.for(j, I(0), f.at(end4), 4, [f.set(mx4, m.f32x4.max(f.get(mx4), m.v128.load(0, 4, at(f.get(j)))))]),
      f.set(mx, m.f32.max(m.f32.max(lane(0), lane(1)), m.f32.max(lane(2), lane(3)))),
      f.for(j, f.get(end4), f.at(LEN), 1, [f.set(mx, m.f32.max(f.get(mx), m.f32.load(0, 4, at(f.get(j)))))]),
      // s = Σ exp(x − max), four at a time, in two f64 lanes
      f.set(mx2, m.f64x2.splat(m.f64.promote(f.get(mx)))),
      f.set(sum, d2(0)),
      f.for(j, I(0), f.at(end4), 4, [
        f.set(v, m.v128.load(0, 4, at(f.get(j)))),
        f.set(lo, m.f64x2.sub(promoteLo(c, f.get(v)), f.get(mx2))),
        f.set(hi, m.f64x2.sub(promoteHi(c, f.get(v)), f.get(mx2))),
        m.if(
          m.i32.and(f32Ok(lo), f32Ok(hi)),
          m.block(null, [...e4.pre, f.set(v, e4.value), f.set(lo, promoteLo(c, f.get(v))), f.set(hi, promoteHi(c, f.get(v)))]),
          m.if(
            m.i32.and(m.i64x2.all_true(fastOk(lo)), m.i64x2.all_true(fastOk(hi))),
            m.block(null, [...eLo.pre, ...eHi.pre, f.set(lo, eLo.value), f.set(hi, eHi.value)]),
            m.block(null, [f.set(lo, m.call(pair, [f.get(lo)], b.v128)), f.set(hi, m.call(pair, [f.get(hi)], b.v128))]),
          ),
        ),
        f.set(sum, m.f64x2.add(m.f64x2.add(f.get(sum), f.get(lo)), f.get(hi))),
      ]),
      f.set(s, m.f64.add(m.f64x2.extract_lane(f.get(sum), 0), m.f64x2.extract_lane(f.get(sum), 1))),
      f.for(j, f.get(end4), f.at(LEN), 1, [
        f.set(s, m.f64.add(f.get(s), m.call(scalar, [m.f64.sub(m.f64.promote(m.f32.load(0, 4, at(f.get(j)))), m.f64.promote(f.get(mx)))], b.f64))),
      ]),
      m.return(m.f64.add(m.call('log', [f.get(s)], b.f64), m.f64.sub(m.f64.promote(f.get(mx)), m.f64.promote(m.f32.load(0, 4, at(f.get(T))))))),
    ]);
  });
}

export const crossEntropyKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const V = () => c.dim(shape.at(-1)!);
  const [r, t] = [f.local(b.i32), f.local(b.i32)];
  const row = crossEntropyRow(c);
  return [
    f.for(r, m.i32.const(0), () => c.numel(shape.slice(0, -1)), 1, [
      f.set(t, m.i32.load(0, 4, m.i32.add(c.in(1), m.i32.shl(f.get(r), m.i32.const(2))))),
      m.if(m.i32.ge_u(f.get(t), V()), c.fail(FAIL.targetIndex, f.get(t), f.get(r), V())),
      m.f32.store(
        0,
        4,
        m.i32.add(c.out(), m.i32.shl(f.get(r), m.i32.const(2))),
        m.f32.demote(m.call(row, [m.i32.add(c.in(0), m.i32.shl(m.i32.mul(f.get(r), V()), m.i32.const(2))), V(), f.get(t)], b.f64)),
      ),
    ]),
  ];
};
