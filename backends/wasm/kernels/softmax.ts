/**
 * softmax along an axis: the lane's max, then e = exp(x − max) (stored in the result as f32)
 * summed in f64, then each e divided by the sum. exp is exp64 (exp.ts), in the module.
 */
import { exp64 } from './exp.js';
import type { WasmKernel } from './kernel.js';
import { axisOf } from './kernel.js';
import { laneAt, lanes } from './lanes.js';

export const softmaxKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const [k, mx, s, e] = [f.local(b.i32), f.local(b.f64), f.local(b.f64), f.local(b.f64)];
  return lanes(c, shape, axisOf(c.node, shape.length), 'same', (x0, o0, len, stride) => {
    const x = () => m.f64.promote(m.f32.load(0, 4, laneAt(c, c.in(0), x0, f.get(k), stride)));
    const outAt = () => laneAt(c, c.out(), o0, f.get(k), stride);
    return [
      f.set(mx, m.f64.const(-Infinity)),
      f.for(k, m.i32.const(0), len, 1, [f.set(mx, m.f64.max(f.get(mx), x()))]),
      f.set(s, m.f64.const(0)),
      f.for(k, m.i32.const(0), len, 1, [
        f.set(e, m.call(exp64(c), [m.f64.sub(x(), f.get(mx))], b.f64)),
        f.set(s, m.f64.add(f.get(s), f.get(e))),
        m.f32.store(0, 4, outAt(), m.f32.demote(f.get(e))),
      ]),
      f.for(k, m.i32.const(0), len, 1, [m.f32.store(0, 4, outAt(), m.f32.demote(m.f64.div(m.f64.promote(m.f32.load(0, 4, outAt())), f.get(s))))]),
    ];
  });
};
