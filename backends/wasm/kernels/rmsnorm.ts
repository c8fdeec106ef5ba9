/** rmsnorm over the last axis: r = √(Σx²/D + eps) in f64, out = x / r · w. */
import type { WasmKernel } from './kernel.js';

export const rmsnormKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const D = () => c.dim(shape.at(-1)!);
  const [row, k, ss, r, p] = [f.local(b.i32), f.local(b.i32), f.local(b.f64), f.local(b.f64), f.local(b.i32)];
  const x = () => m.f64.promote(m.f32.load(0, 4, m.i32.add(c.in(0), m.i32.shl(m.i32.add(f.get(p), f.get(k)), m.i32.const(2)))));
  const w = () => m.f64.promote(m.f32.load(0, 4, m.i32.add(c.in(1), m.i32.shl(f.get(k), m.i32.const(2)))));
  return [
    f.for(row, m.i32.const(0), () => c.numel(shape.slice(0, -1)), 1, [
      f.set(p, m.i32.mul(f.get(row), D())),
      f.set(ss, m.f64.const(0)),
      f.for(k, m.i32.const(0), D, 1, [f.set(ss, m.f64.add(f.get(ss), m.f64.mul(x(), x())))]),
      f.set(r, m.f64.sqrt(m.f64.add(m.f64.div(f.get(ss), m.f64.convert_s.i32(D())), m.f64.const(c.node.attrs['eps'] as number)))),
      f.for(k, m.i32.const(0), D, 1, [
        m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(m.i32.add(f.get(p), f.get(k)), m.i32.const(2))), m.f32.demote(m.f64.mul(m.f64.div(x(), f.get(r)), w()))),
      ]),
    ]),
  ];
};
