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
