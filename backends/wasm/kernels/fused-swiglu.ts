/**
 * fused swiglu: act(x·W1ᵀ) ⊙ (x·W3ᵀ) in one pass (act is SiLU for SwiGLU; any unary op is read
 * from the body by the js backend's `swigluForm`). W1 and W3 are [N, K] row-major; for each row
 * of x and each column n, the gate and up dot products run side by side four k at a time (two
 * f32x4 accumulators, summed as mm_nt sums), then out = act(gate)·up. The gate and up
 * projections are never stored.
 */
import type { Dim } from '../../../graph/dim.js';
import type { FusedBody, UnaryOp } from '../../../graph/ops.js';
import { swigluForm } from '../../js/kernels/fused-swiglu.js';
import { Fn } from '../fn.js';
import { unaryF64 } from './elementwise.js';
import type { WasmCtx, WasmKernel } from './kernel.js';

function buildSwiglu(c: WasmCtx, name: string, act: UnaryOp): void {
  const { b, m } = c;
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
  const [X, WG, WU, OUT, M, N, K] = [0, 1, 2, 3, 4, 5, 6];
  const [row, n, k, ga, ua, gs, us, gv] = [b.i32, b.i32, b.i32, b.v128, b.v128, b.f32, b.f32, b.f64].map((t) => f.local(t)) as number[];
  const [xRow, wRow] = [f.local(b.i32), f.local(b.i32)];
  const off = () => m.i32.shl(f.get(k!), m.i32.const(2));
  const xAt = () => m.i32.add(f.get(xRow), off());
  const wAt = (w: number) => m.i32.add(m.i32.add(f.get(w), f.get(wRow)), off());
  const hsum = (a: number) => {
    const lane = (l: number) => m.f32x4.extract_lane(f.get(a), l);
    return m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)));
  };
  const K4 = () => m.i32.shl(f.get(K), m.i32.const(2));
  f.finish(name, b.none, [
    f.for(row!, m.i32.const(0), f.at(M), 1, [
      f.set(xRow, m.i32.add(f.get(X), m.i32.mul(f.get(row!), K4()))),
      f.for(n!, m.i32.const(0), f.at(N), 1, [
        f.set(wRow, m.i32.mul(f.get(n!), K4())),
        f.set(ga!, m.v128.const(new Array(16).fill(0))),
        f.set(ua!, m.v128.const(new Array(16).fill(0))),
        f.set(k!, m.i32.const(0)),
        m.block('vec', [
          m.loop('ks', m.block(null, [
            m.br('vec', m.i32.gt_s(m.i32.add(f.get(k!), m.i32.const(4)), f.get(K))),
            f.set(ga!, c.madd(m.v128.load(0, 4, xAt()), m.v128.load(0, 4, wAt(WG)), f.get(ga!))),
            f.set(ua!, c.madd(m.v128.load(0, 4, xAt()), m.v128.load(0, 4, wAt(WU)), f.get(ua!))),
            f.set(k!, m.i32.add(f.get(k!), m.i32.const(4))),
            m.br('ks'),
          ])),
        ]),
        f.set(gs!, hsum(ga!)),
        f.set(us!, hsum(ua!)),
        f.for(k!, f.get(k!), f.at(K), 1, [
          f.set(gs!, m.f32.add(f.get(gs!), m.f32.mul(m.f32.load(0, 4, xAt()), m.f32.load(0, 4, wAt(WG))))),
          f.set(us!, m.f32.add(f.get(us!), m.f32.mul(m.f32.load(0, 4, xAt()), m.f32.load(0, 4, wAt(WU))))),
        ]),
        // act rounded to f32 before the product, as the unfused kernels store it
        f.set(gv!, m.f64.promote(f.get(gs!))),
        f.set(gv!, m.f64.promote(m.f32.demote(unaryF64(c, act, f.at(gv!))))),
        m.f32.store(0, 4, m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(f.get(row!), f.get(N)), f.get(n!)), m.i32.const(2))), m.f32.demote(m.f64.mul(f.get(gv!), m.f64.promote(f.get(us!))))),
      ]),
    ]),
  ]);
}

export const swigluKernel: WasmKernel = (c) => {
  const form = swigluForm(c.node.attrs['body'] as FusedBody)!;
  const fn = c.helper(`swiglu_${form.act}`, () => buildSwiglu(c, `swiglu_${form.act}`, form.act));
  const xs = c.types[form.x]!.shape;
  const N = (c.types[form.gate]!.shape as Dim[])[0]!;
  return [c.m.call(fn, [c.in(form.x), c.in(form.gate), c.in(form.up), c.out(), c.numel(xs.slice(0, -1)), c.dim(N), c.dim(xs.at(-1)!)], c.b.none)];
};
