/** one_hot: the result zeroed, then a 1 at [i, v] for every index v in [0, depth); others leave their row zero. */
import type { Dim } from '../../../graph/dim.js';
import type { WasmKernel } from './kernel.js';

export const oneHotKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const depth = () => c.dim(c.node.attrs['depth'] as Dim);
  const [i, v] = [f.local(b.i32), f.local(b.i32)];
  return [
    m.memory.fill(c.out(), m.i32.const(0), m.i32.shl(c.numel(c.node.type.shape), m.i32.const(2))),
    f.for(i, m.i32.const(0), () => c.numel(c.types[0]!.shape), 1, [
      f.set(v, m.i32.load(0, 4, m.i32.add(c.in(0), m.i32.shl(f.get(i), m.i32.const(2))))),
      // unsigned: a negative index is past depth too
      m.if(m.i32.lt_u(f.get(v), depth()), m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(m.i32.add(m.i32.mul(f.get(i), depth()), f.get(v)), m.i32.const(2))), m.f32.const(1))),
    ]),
  ];
};
