/** iota: start + the index along the axis. */
import type { Dim } from '../../../graph/dim.js';
import { axisOf, splitAt, type WasmKernel } from './kernel.js';

export const iotaKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.node.type.shape;
  const ax = axisOf(c.node, shape.length);
  const [o, a, i, p] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const v = () => m.i32.add(c.dim(c.node.attrs['start'] as Dim), f.get(a));
  const store = c.node.type.dtype === 'i32' ? m.i32.store(0, 4, f.get(p), v()) : m.f32.store(0, 4, f.get(p), m.f32.convert_s.i32(v()));
  return [
    f.set(p, c.out()),
    f.for(o, m.i32.const(0), () => splitAt(c, shape, ax)[0], 1, [
      f.for(a, m.i32.const(0), () => splitAt(c, shape, ax)[1], 1, [
        f.for(i, m.i32.const(0), () => splitAt(c, shape, ax)[2], 1, [store, f.set(p, m.i32.add(f.get(p), m.i32.const(4)))]),
      ]),
    ]),
  ];
};
