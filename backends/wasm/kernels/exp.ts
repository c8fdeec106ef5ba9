/**
 * exp in f64 inside the module: a host call per element (Math.exp through the import) cost more
 * than the arithmetic in silu and softmax. Cody–Waite reduction x = k·ln2 + r, |r| ≤ ln2/2, then
 * a degree-13 Taylor polynomial (truncation < 1e-17 relative) and 2^k built from its bits. The
 * polynomial goes by Estrin's scheme (`taylor`): Horner's 26 dependent steps made exp latency-bound
 * (softmax over 128×128 scores −18% with Estrin's). The scalar and vector forms run the same
 * operations in the same order, so they agree bit for bit. Within a
 * few ulp of Math.exp, so values rounded to f32 match the js backend's but for rare ties. Below
 * −746 it is 0 (as Math.exp); elsewhere outside [−708, 709] (subnormal or infinite results) and
 * for NaN it defers to the host's Math.exp.
 */
import { type Expr, Fn } from '../fn.js';
import { demote2, lowHalves } from './f64x2.js';
import type { WasmCtx } from './kernel.js';

const LN2_HI = 6.93147180369123816490e-1; // 32 significant bits: k·LN2_HI is exact for |k| < 2^20
const LN2_LO = 1.90821492927058770002e-10;

/** Declare `exp64(x: f64) → f64` once; returns its name. */
export function exp64(c: WasmCtx): string {
  return c.helper('exp64', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.f64]);
    const [k, r, p, r2, r4, r8] = [f.local(b.f64), f.local(b.f64), f.local(b.f64), f.local(b.f64), f.local(b.f64), f.local(b.f64)];
    const x = () => f.get(0);
    const ops: PolyOps = { add: (a, b2) => m.f64.add(a, b2), mul: (a, b2) => m.f64.mul(a, b2), c: (v) => m.f64.const(v) };
    const poly = taylor(ops, f.at(r), f.at(r2), f.at(r4), f.at(r8));
    const inRange = m.i32.and(m.f64.ge(x(), m.f64.const(-708)), m.f64.le(x(), m.f64.const(709)));
    f.finish('exp64', b.f64, [
      // below −746 (−∞ included: a causal mask's entries) Math.exp is exactly 0
      m.if(m.f64.lt(x(), m.f64.const(-746)), m.return(m.f64.const(0))),
      m.if(m.i32.eqz(inRange), m.return(m.call('exp', [x()], b.f64))),
      f.set(k, m.f64.nearest(m.f64.mul(x(), m.f64.const(Math.LOG2E)))),
      f.set(r, m.f64.sub(m.f64.sub(x(), m.f64.mul(f.get(k), m.f64.const(LN2_HI))), m.f64.mul(f.get(k), m.f64.const(LN2_LO)))),
      ...powers(ops, f, r, r2, r4, r8),
      f.set(p, poly),
      // 2^k for k in [−1022, 1023]: the exponent field alone
      m.return(m.f64.mul(f.get(p), m.f64.reinterpret(m.i64.shl(m.i64.extend_s(m.i32.add(m.i32.trunc_s.f64(f.get(k)), m.i32.const(1023))), m.i64.const(BigInt(52)))))),
    ]);
  });
}

/** add, mul and constants of one type (f64 or f64x2), for the polynomial shared by both. */
interface PolyOps {
  add(a: Expr, b: Expr): Expr;
  mul(a: Expr, b: Expr): Expr;
  c(v: number): Expr;
}

/** r2 = r², r4 = r2², r8 = r4² (locals of f), set before `taylor` reads them. */
const powers = (o: PolyOps, f: Fn, r: number, r2: number, r4: number, r8: number): Expr[] => [
  f.set(r2, o.mul(f.get(r), f.get(r))),
  f.set(r4, o.mul(f.get(r2), f.get(r2))),
  f.set(r8, o.mul(f.get(r4), f.get(r4))),
];

/** Σ rⁿ/n! for n ≤ 13 by Estrin's scheme: pairs a + b·r, quads by r², eights by r⁴, then r⁸. */
function taylor(o: PolyOps, r: () => Expr, r2: () => Expr, r4: () => Expr, r8: () => Expr): Expr {
  const cf = (n: number) => o.c(1 / factorial(n));
  const lin = (n: number) => o.add(cf(n), o.mul(cf(n + 1), r()));
  const quad = (n: number) => o.add(lin(n), o.mul(r2(), lin(n + 2)));
  // degrees 0–7, then 8–13 (8–11 as a quad, 12–13 a pair above it)
  const low = o.add(quad(0), o.mul(r4(), quad(4)));
  const high = o.add(quad(8), o.mul(r4(), lin(12)));
  return o.add(low, o.mul(r8(), high));
}

function factorial(n: number): number {
  let v = 1;
  for (let i = 2; i <= n; i++) v *= i;
  return v;
}

/**
 * exp of the f64x2 `x` inline, every lane in [−708, 709]: the operations of exp64 in the same
 * order, so bit for bit its results. `k` and `r` are scratch v128 locals of `f`; returns the
 * statements to run and the value (read once, after them).
 */
export function exp2Inline(c: WasmCtx, f: Fn, x: () => Expr, k: number, r: number): { pre: Expr[]; value: Expr } {
  const { m } = c;
  const splat = (v: number) => m.f64x2.splat(m.f64.const(v));
  const ops: PolyOps = { add: (a, b) => m.f64x2.add(a, b), mul: (a, b) => m.f64x2.mul(a, b), c: splat };
  const [r2, r4, r8] = [f.local(c.b.v128), f.local(c.b.v128), f.local(c.b.v128)];
  return {
    pre: [
      f.set(k, m.f64x2.nearest(m.f64x2.mul(x(), splat(Math.LOG2E)))),
      f.set(r, m.f64x2.sub(m.f64x2.sub(x(), m.f64x2.mul(f.get(k), splat(LN2_HI))), m.f64x2.mul(f.get(k), splat(LN2_LO)))),
      ...powers(ops, f, r, r2, r4, r8),
    ],
    value: m.f64x2.mul(
      taylor(ops, f.at(r), f.at(r2), f.at(r4), f.at(r8)),
      // 2^k for k in [−1022, 1023]: the exponent field alone
      m.i64x2.shl(m.i64x2.add(m.i64x2.extend_low_i32x4_s(m.i32x4.trunc_sat_f64x2_s_zero(f.get(k))), m.i64x2.splat(m.i64.const(BigInt(1023)))), m.i32.const(52)),
    ),
  };
}

/** A lane mask of the f64x2 `x`: all ones where the lane lies in [−708, 709] (exp's fast range; not NaN). */
export const expRangeMask = (c: WasmCtx, x: () => Expr): Expr => {
  const splat = (v: number) => c.m.f64x2.splat(c.m.f64.const(v));
  return c.m.v128.and(c.m.f64x2.ge(x(), splat(-708)), c.m.f64x2.le(x(), splat(709)));
};

/**
 * Declare `exp64x2(x: f64x2) → f64x2`: exp64 on both lanes with the same operations in the same
 * order (so bit for bit exp64's results), two at a time; a vector with a lane outside
 * [−708, 709] (or NaN) takes exp64 lane by lane.
 */
export function exp64x2(c: WasmCtx): string {
  const scalar = exp64(c);
  return c.helper('exp64x2', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.v128]);
    const [k, r] = [f.local(b.v128), f.local(b.v128)];
    const x = () => f.get(0);
    const lane = (l: number) => m.call(scalar, [m.f64x2.extract_lane(x(), l)], b.f64);
    const e = exp2Inline(c, f, x, k, r);
    f.finish('exp64x2', b.v128, [
      m.if(m.i32.eqz(m.i64x2.all_true(expRangeMask(c, x))), m.return(m.f64x2.replace_lane(m.f64x2.splat(lane(0)), 1, lane(1)))),
      ...e.pre,
      m.return(e.value),
    ]);
  });
}

/** e^r ≈ Σ rⁿ/n! for n ≤ 7 on four f32 lanes by Estrin's scheme (truncation < 6e-9 for |r| ≤ ln2/2). */
function estrin7F32(c: WasmCtx, r: () => Expr, r2: () => Expr, r4: () => Expr): Expr {
  const { m } = c;
  const sp = (v: number) => m.f32x4.splat(m.f32.const(v));
  const add = (a: Expr, y: Expr) => m.f32x4.add(a, y);
  const mul = (a: Expr, y: Expr) => m.f32x4.mul(a, y);
  const lin = (n: number) => add(sp(1 / factorial(n)), mul(sp(1 / factorial(n + 1)), r()));
  return add(add(lin(0), mul(r2(), lin(2))), mul(r4(), add(lin(4), mul(r2(), lin(6)))));
}

/** Lanes of the f64x2 `x` inside [−87, 88] (not NaN): where expF32 is exact to f32's range. */
export const expF32Mask = (c: WasmCtx, x: () => Expr): Expr => {
  const splat = (v: number) => c.m.f64x2.splat(c.m.f64.const(v));
  return c.m.v128.and(c.m.f64x2.ge(x(), splat(-87)), c.m.f64x2.le(x(), splat(88)));
};

/**
 * exp of four lanes given in f64 (the f64x2 locals `lo` and `hi`, every lane in [−87, 88]) as
 * four f32 lanes, inline in `f`: the reduction x = k·ln2 + r in f64 as exp64 makes it, r then
 * rounded to f32 (|r| ≤ 0.35, so off by at most 2⁻²⁶), e^r by the degree-7 polynomial in f32 and
 * 2^k from the exponent bits (k in [−126, 127]). Within 2 ulp of exp rounded to f32; where
 * exp2Inline takes two lanes through a degree-13 f64 polynomial, this takes four (softmax).
 * Returns the statements to run and the value (read once, after them).
 */
export function expF32(c: WasmCtx, f: Fn, lo: number, hi: number): { pre: Expr[]; value: Expr } {
  const { m, b } = c;
  const [klo, khi, r, r2, r4] = Array.from({ length: 5 }, () => f.local(b.v128)) as [number, number, number, number, number];
  const d2 = (v: number) => m.f64x2.splat(m.f64.const(v));
  const reduce = (x: number, k: number) => m.f64x2.sub(m.f64x2.sub(f.get(x), m.f64x2.mul(f.get(k), d2(LN2_HI))), m.f64x2.mul(f.get(k), d2(LN2_LO)));
  const kOf = (k: number) => m.i32x4.trunc_sat_f64x2_s_zero(f.get(k));
  return {
    pre: [
      f.set(klo, m.f64x2.nearest(m.f64x2.mul(f.get(lo), d2(Math.LOG2E)))),
      f.set(khi, m.f64x2.nearest(m.f64x2.mul(f.get(hi), d2(Math.LOG2E)))),
      f.set(r, demote2(c, reduce(lo, klo), reduce(hi, khi))),
      // k as four i32 lanes, then 2^k as f32 bits
      f.set(klo, lowHalves(c, kOf(klo), kOf(khi))),
      f.set(klo, m.i32x4.shl(m.i32x4.add(f.get(klo), m.i32x4.splat(m.i32.const(127))), m.i32.const(23))),
      f.set(r2, m.f32x4.mul(f.get(r), f.get(r))),
      f.set(r4, m.f32x4.mul(f.get(r2), f.get(r2))),
    ],
    value: m.f32x4.mul(estrin7F32(c, f.at(r), f.at(r2), f.at(r4)), f.get(klo)),
  };
}

// exp in f32 for SiLU: Cody–Waite with a 9-bit ln2_hi (k·LN2F_HI exact for |k| < 2^15).
const LN2F_HI = 0.693359375;
const LN2F_LO = -2.12194440e-4;
/** Below it exp(−x) overflows f32's 2^k (k ≤ 127): such lanes take the f64 path. */
const SILU_F32_MIN = -87;

/**
 * Declare `silu4(v: f32x4) → f32x4`: x / (1 + exp(−x)) on four lanes in f32 — SwiGLU's gate
 * in prefill, where the f64 route (two lanes at a time, a degree-13 exp) took 6% of the layer.
 * exp(−x) is Cody–Waite plus a degree-7 Taylor polynomial by Estrin's scheme (truncation
 * < 6e-9), 2^k from its bits; within 3 ulp of the f64 value rounded to f32 (a test holds it to
 * that). Each lane's value depends on that lane alone: a lane below −87 (where 2^k would leave
 * f32's normal range) is computed lane by lane in f64, whatever its neighbours are.
 */
export function silu4(c: WasmCtx): string {
  const scalar = exp64(c);
  return c.helper('silu4', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.v128]);
    const [x, k, r, r2, r4, out, low] = Array.from({ length: 7 }, () => f.local(b.v128)) as [number, number, number, number, number, number, number];
    const sp = (v: number) => m.f32x4.splat(m.f32.const(v));
    const add = (a: Expr, y: Expr) => m.f32x4.add(a, y);
    const mul = (a: Expr, y: Expr) => m.f32x4.mul(a, y);
    const v = () => f.get(0);
    const lane = (l: number) => {
      const xl = () => m.f64.promote(m.f32x4.extract_lane(v(), l));
      const slow = m.f32.demote(m.f64.div(xl(), m.f64.add(m.f64.const(1), m.call(scalar, [m.f64.neg(xl())], b.f64))));
      return m.if(m.i32x4.extract_lane(f.get(low), l), f.set(out, m.f32x4.replace_lane(f.get(out), l, slow)));
    };
    f.finish('silu4', b.v128, [
      // exp's argument −v inside [−87, 87], where 2^k is a normal f32: above 87, 1 + exp(−v)
      // rounds to 1 all the same; lanes below −87 are redone below. NaN stays NaN.
      f.set(x, m.f32x4.max(m.f32x4.min(m.f32x4.neg(v()), sp(-SILU_F32_MIN)), sp(SILU_F32_MIN))),
      f.set(k, m.f32x4.nearest(mul(f.get(x), sp(Math.LOG2E)))),
      f.set(r, m.f32x4.sub(m.f32x4.sub(f.get(x), mul(f.get(k), sp(LN2F_HI))), mul(f.get(k), sp(LN2F_LO)))),
      f.set(r2, mul(f.get(r), f.get(r))),
      f.set(r4, mul(f.get(r2), f.get(r2))),
      // e^r by Estrin, times 2^k (k in [−126, 126]: the exponent field alone)
      f.set(k, m.i32x4.shl(m.i32x4.add(m.i32x4.trunc_sat_f32x4_s(f.get(k)), m.i32x4.splat(m.i32.const(127))), m.i32.const(23))),
      f.set(out, mul(estrin7F32(c, f.at(r), f.at(r2), f.at(r4)), f.get(k))),
      f.set(out, m.f32x4.div(v(), add(sp(1), f.get(out)))),
      f.set(low, m.f32x4.lt(v(), sp(SILU_F32_MIN))),
      m.if(m.v128.any_true(f.get(low)), m.block(null, [0, 1, 2, 3].map(lane))),
      m.return(f.get(out)),
    ]);
  });
}
