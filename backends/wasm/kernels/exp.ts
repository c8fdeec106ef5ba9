/**
 * exp in f64 inside the module: a host call per element (Math.exp through the import) cost more
 * than the arithmetic in silu and softmax. Cody–Waite reduction x = k·ln2 + r, |r| ≤ ln2/2, then
 * a degree-13 Taylor polynomial (truncation < 1e-17 relative) and 2^k built from its bits. Within a
 * few ulp of Math.exp, so values rounded to f32 match the js backend's but for rare ties. Below
 * −746 it is 0 (as Math.exp); elsewhere outside [−708, 709] (subnormal or infinite results) and
 * for NaN it defers to the host's Math.exp.
 */
import { Fn } from '../fn.js';
import type { WasmCtx } from './kernel.js';

const LN2_HI = 6.93147180369123816490e-1; // 32 significant bits: k·LN2_HI is exact for |k| < 2^20
const LN2_LO = 1.90821492927058770002e-10;
const TERMS = 13;

/** Declare `exp64(x: f64) → f64` once; returns its name. */
export function exp64(c: WasmCtx): string {
  return c.helper('exp64', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.f64]);
    const [k, r, p] = [f.local(b.f64), f.local(b.f64), f.local(b.f64)];
    const x = () => f.get(0);
    let poly = m.f64.const(1 / factorial(TERMS));
    for (let n = TERMS - 1; n >= 0; n--) poly = m.f64.add(m.f64.mul(poly, f.get(r)), m.f64.const(1 / factorial(n)));
    const inRange = m.i32.and(m.f64.ge(x(), m.f64.const(-708)), m.f64.le(x(), m.f64.const(709)));
    f.finish('exp64', b.f64, [
      // below −746 (−∞ included: a causal mask's entries) Math.exp is exactly 0
      m.if(m.f64.lt(x(), m.f64.const(-746)), m.return(m.f64.const(0))),
      m.if(m.i32.eqz(inRange), m.return(m.call('exp', [x()], b.f64))),
      f.set(k, m.f64.nearest(m.f64.mul(x(), m.f64.const(Math.LOG2E)))),
      f.set(r, m.f64.sub(m.f64.sub(x(), m.f64.mul(f.get(k), m.f64.const(LN2_HI))), m.f64.mul(f.get(k), m.f64.const(LN2_LO)))),
      f.set(p, poly),
      // 2^k for k in [−1022, 1023]: the exponent field alone
      m.return(m.f64.mul(f.get(p), m.f64.reinterpret(m.i64.shl(m.i64.extend_s(m.i32.add(m.i32.trunc_s.f64(f.get(k)), m.i32.const(1023))), m.i64.const(BigInt(52)))))),
    ]);
  });
}

function factorial(n: number): number {
  let v = 1;
  for (let i = 2; i <= n; i++) v *= i;
  return v;
}

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
    const [k, r, p] = [f.local(b.v128), f.local(b.v128), f.local(b.v128)];
    const x = () => f.get(0);
    const splat = (v: number) => m.f64x2.splat(m.f64.const(v));
    let poly = splat(1 / factorial(TERMS));
    for (let n = TERMS - 1; n >= 0; n--) poly = m.f64x2.add(m.f64x2.mul(poly, f.get(r)), splat(1 / factorial(n)));
    const inRange = m.i64x2.all_true(m.v128.and(m.f64x2.ge(x(), splat(-708)), m.f64x2.le(x(), splat(709))));
    const lane = (l: number) => m.call(scalar, [m.f64x2.extract_lane(x(), l)], b.f64);
    f.finish('exp64x2', b.v128, [
      m.if(m.i32.eqz(inRange), m.return(m.f64x2.replace_lane(m.f64x2.splat(lane(0)), 1, lane(1)))),
      f.set(k, m.f64x2.nearest(m.f64x2.mul(x(), splat(Math.LOG2E)))),
      f.set(r, m.f64x2.sub(m.f64x2.sub(x(), m.f64x2.mul(f.get(k), splat(LN2_HI))), m.f64x2.mul(f.get(k), splat(LN2_LO)))),
      f.set(p, poly),
      m.return(
        m.f64x2.mul(
          f.get(p),
          m.i64x2.shl(m.i64x2.add(m.i64x2.extend_low_i32x4_s(m.i32x4.trunc_sat_f64x2_s_zero(f.get(k))), m.i64x2.splat(m.i64.const(BigInt(1023)))), m.i32.const(52)),
        ),
      ),
    ]);
  });
}

/**
 * Declare `silu4(v: f32x4) → f32x4`: silu of four f32 lanes, each as the scalar kernels compute
 * it — x / (1 + exp(−x)) in f64, rounded to f32 — two lanes at a time through exp64x2.
 */
export function silu4(c: WasmCtx): string {
  const e2 = exp64x2(c);
  return c.helper('silu4', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.v128]);
    const [lo, hi] = [f.local(b.v128), f.local(b.v128)];
    const half = (x: number) => m.f32x4.demote_f64x2_zero(m.f64x2.div(f.get(x), m.f64x2.add(m.f64x2.splat(m.f64.const(1)), m.call(e2, [m.f64x2.neg(f.get(x))], b.v128))));
    f.finish('silu4', b.v128, [
      f.set(lo, m.f64x2.promote_low_f32x4(f.get(0))),
      f.set(hi, m.f64x2.promote_low_f32x4(m.i8x16.shuffle(f.get(0), f.get(0), [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]))),
      m.return(m.i8x16.shuffle(half(lo), half(hi), [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23])),
    ]);
  });
}
