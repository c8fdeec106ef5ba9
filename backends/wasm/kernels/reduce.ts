/** sum, mean, amax along an axis: f64 accumulation in index order, as the interpreter does. */
import type { Expr } from '../fn.js';
import type { WasmKernel } from './kernel.js';
import { axisOf } from './kernel.js';
import { laneAt, lanes } from './lanes.js';

export const reduceKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const op = c.node.op;
  const [k, acc] = [f.local(b.i32), f.local(b.f64)];
  return lanes(c, shape, axisOf(c.node, shape.length), 1, (x0, o0, len, stride) => {
    const x = m.f64.promote(m.f32.load(0, 4, laneAt(c, c.in(0), x0, f.get(k), stride)));
    const step: Expr = op === 'amax' ? m.f64.max(f.get(acc), x) : m.f64.add(f.get(acc), x);
    const result = op === 'mean' ? m.f64.div(f.get(acc), m.f64.convert_s.i32(len())) : f.get(acc);
    return [
      f.set(acc, m.f64.const(op === 'amax' ? -Infinity : 0)),
      f.for(k, m.i32.const(0), len, 1, [f.set(acc, step)]),
      m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(o0(), m.i32.const(2))), m.f32.demote(result)),
    ];
  });
};
