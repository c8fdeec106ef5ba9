/**
 * rope on x[S, H, D]: for each position and pair i, the angle (offset + s)·base^(−2i/D) and its
 * cos and sin (JS Math, imported) once, then every head's pair rotated, in f64.
 */
import type { Dim } from '../../../graph/dim.js';
import type { WasmKernel } from './kernel.js';

export const ropeKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const [S, H, D] = c.types[0]!.shape as [Dim, Dim, number];
  const half = c.node.attrs['layout'] === 'half';
  const base = c.node.attrs['base'] as number;
  const [s, i, h, ang, cs, sn, ia, ib, p, q] = [b.i32, b.i32, b.i32, b.f64, b.f64, b.f64, b.i32, b.i32, b.f64, b.f64].map((t) => f.local(t)) as number[];
  const g = (k: number) => f.get(k!);
  const ld = (base0: () => number, k: number) => m.f64.promote(m.f32.load(0, 4, m.i32.add(base0(), m.i32.shl(g(k), m.i32.const(2)))));
  const st = (k: number, v: number) => m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(g(k), m.i32.const(2))), m.f32.demote(v));
  const row = () => m.i32.mul(m.i32.add(m.i32.mul(g(s!), c.dim(H)), g(h!)), m.i32.const(D));
  return [
    f.for(s!, m.i32.const(0), () => c.dim(S), 1, [
      f.for(i!, m.i32.const(0), () => m.i32.const(D / 2), 1, [
        f.set(ang!, m.f64.mul(m.f64.convert_s.i32(m.i32.add(c.dim(c.node.attrs['offset'] as Dim), g(s!))), m.call('pow', [m.f64.const(base), m.f64.div(m.f64.convert_s.i32(m.i32.mul(g(i!), m.i32.const(-2))), m.f64.const(D))], b.f64))),
        f.set(cs!, m.call('cos', [g(ang!)], b.f64)),
        f.set(sn!, m.call('sin', [g(ang!)], b.f64)),
        f.for(h!, m.i32.const(0), () => c.dim(H), 1, [
          f.set(ia!, m.i32.add(row(), half ? g(i!) : m.i32.shl(g(i!), m.i32.const(1)))),
          f.set(ib!, half ? m.i32.add(g(ia!), m.i32.const(D / 2)) : m.i32.add(g(ia!), m.i32.const(1))),
          f.set(p!, ld(() => c.in(0), ia!)),
          f.set(q!, ld(() => c.in(0), ib!)),
          st(ia!, m.f64.sub(m.f64.mul(g(p!), g(cs!)), m.f64.mul(g(q!), g(sn!)))),
          st(ib!, m.f64.add(m.f64.mul(g(p!), g(sn!)), m.f64.mul(g(q!), g(cs!)))),
        ]),
      ]),
    ]),
  ];
};
