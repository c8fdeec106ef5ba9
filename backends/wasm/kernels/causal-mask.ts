/** causal_mask on x[…, Q, K]: −∞ where j > i + offset, else x. */
import type { Dim } from '../../../graph/dim.js';
import type { WasmKernel } from './kernel.js';

export const causalMaskKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const shape = c.types[0]!.shape;
  const [Q, K] = [shape.at(-2)!, shape.at(-1)!];
  const [t, i, j, p] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const at = (base: number) => m.i32.add(base, m.i32.shl(f.get(p), m.i32.const(2)));
  return [
    f.set(p, m.i32.const(0)),
    f.for(t, m.i32.const(0), () => c.numel(shape.slice(0, -2)), 1, [
      f.for(i, m.i32.const(0), () => c.dim(Q), 1, [
        f.for(j, m.i32.const(0), () => c.dim(K), 1, [
          m.f32.store(0, 4, at(c.out()), m.if(m.i32.gt_s(f.get(j), m.i32.add(f.get(i), c.dim(c.node.attrs['offset'] as Dim))), m.f32.const(-Infinity), m.f32.load(0, 4, at(c.in(0))))),
          f.set(p, m.i32.add(f.get(p), m.i32.const(1))),
        ]),
      ]),
    ]),
  ];
};
