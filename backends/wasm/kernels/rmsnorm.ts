/**
 * rmsnorm over the last axis: r = √(Σx²/D + eps) in f64, out = x / r · w. Four elements at a time:
 * the squares summed in two f64x2 accumulators (the scalar tail after them), the quotient and
 * product per element in f64 as the scalar form computes them.
 */
import type { Expr } from '../fn.js';
import { demote2, promoteHi, promoteLo } from './f64x2.js';
import type { WasmKernel } from './kernel.js';

export const rmsnormKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const D = () => c.dim(shape.at(-1)!);
  const I = (v: number) => m.i32.const(v);
  const [row, k, ss, r, p, end4] = [f.local(b.i32), f.local(b.i32), f.local(b.f64), f.local(b.f64), f.local(b.i32), f.local(b.i32)];
  const [s0, s1, v, w, r2] = [f.local(b.v128), f.local(b.v128), f.local(b.v128), f.local(b.v128), f.local(b.v128)];
  const xAt = () => m.i32.add(c.in(0), m.i32.shl(m.i32.add(f.get(p), f.get(k)), I(2)));
  const wAt = () => m.i32.add(c.in(1), m.i32.shl(f.get(k), I(2)));
  const oAt = () => m.i32.add(c.out(), m.i32.shl(m.i32.add(f.get(p), f.get(k)), I(2)));
  const x = () => m.f64.promote(m.f32.load(0, 4, xAt()));
  /** acc += l² (l a local: a binaryen expression may be used once) */
  const sq = (l: number, acc: number) => f.set(acc, m.f64x2.add(f.get(acc), m.f64x2.mul(f.get(l), f.get(l))));
  const norm = (xv: Expr, wv: Expr) => m.f64x2.mul(m.f64x2.div(xv, f.get(r2)), wv);
  return [
    f.set(end4, m.i32.and(D(), I(~3))),
    f.for(row, I(0), () => c.numel(shape.slice(0, -1)), 1, [
      f.set(p, m.i32.mul(f.get(row), D())),
      f.set(s0, m.f64x2.splat(m.f64.const(0))),
      f.set(s1, m.f64x2.splat(m.f64.const(0))),
      f.for(k, I(0), f.at(end4), 4, [f.set(v, m.v128.load(0, 4, xAt())), f.set(w, promoteLo(c, f.get(v))), sq(w, s0), f.set(w, promoteHi(c, f.get(v))), sq(w, s1)]),
      f.set(s0, m.f64x2.add(f.get(s0), f.get(s1))),
      f.set(ss, m.f64.add(m.f64x2.extract_lane(f.get(s0), 0), m.f64x2.extract_lane(f.get(s0), 1))),
      f.for(k, f.get(end4), D, 1, [f.set(ss, m.f64.add(f.get(ss), m.f64.mul(x(), x())))]),
      f.set(r, m.f64.sqrt(m.f64.add(m.f64.div(f.get(ss), m.f64.convert_s.i32(D())), m.f64.const(c.node.attrs['eps'] as number)))),
      f.set(r2, m.f64x2.splat(f.get(r))),
      f.for(k, I(0), f.at(end4), 4, [
        f.set(v, m.v128.load(0, 4, xAt())),
        f.set(w, m.v128.load(0, 4, wAt())),
        m.v128.store(0, 4, oAt(), demote2(c, norm(promoteLo(c, f.get(v)), promoteLo(c, f.get(w))), norm(promoteHi(c, f.get(v)), promoteHi(c, f.get(w))))),
      ]),
      f.for(k, f.get(end4), D, 1, [m.f32.store(0, 4, oAt(), m.f32.demote(m.f64.mul(m.f64.div(x(), f.get(r)), m.f64.promote(m.f32.load(0, 4, wAt())))))]),
    ]),
  ];
};
