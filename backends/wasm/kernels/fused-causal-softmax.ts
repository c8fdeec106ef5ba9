/**
 * fused causal_softmax: softmax over the last axis of causal_mask(x [· scale]) (the form is read
 * from the body by the js backend's `causalSoftmaxForm`). Row i of each [Q, K] block keeps its first
 * i + offset + 1 entries (clamped to [0, K]); softmax_row takes the softmax of those and writes
 * zeros after them, so the masked half of a prefill's scores is never exponentiated.
 */
import type { Dim } from '../../../graph/dim.js';
import type { FusedBody } from '../../../graph/ops.js';
import { causalSoftmaxForm } from '../../js/kernels/fused-causal-softmax.js';
import type { WasmKernel } from './kernel.js';
import { softmaxRow } from './softmax.js';

export const causalSoftmaxKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const form = causalSoftmaxForm(c.node.attrs['body'] as FusedBody)!;
  const shape = c.types[form.x]!.shape;
  const [Q, K] = [shape.at(-2)!, shape.at(-1)!] as [Dim, Dim];
  const row = softmaxRow(c);
  const [t, i, at, keep] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const I = (v: number) => m.i32.const(v);
  const scale = form.scale === undefined ? m.f32.const(1) : m.f32.load(0, 4, c.in(form.scale));
  const sc = f.local(b.f32);
  return [
    f.set(sc, scale),
    f.set(at, I(0)),
    f.for(t, I(0), () => c.numel(shape.slice(0, -2)), 1, [
      f.for(i, I(0), () => c.dim(Q), 1, [
        // keep = clamp(i + offset + 1, 0, K)
        f.set(keep, m.i32.add(m.i32.add(f.get(i), c.dim(form.offset)), I(1))),
        f.set(keep, m.select(m.i32.lt_s(f.get(keep), I(0)), I(0), f.get(keep))),
        f.set(keep, m.select(m.i32.gt_s(f.get(keep), c.dim(K)), c.dim(K), f.get(keep))),
        m.call(row, [m.i32.add(c.in(form.x), f.get(at)), m.i32.add(c.out(), f.get(at)), c.dim(K), f.get(keep), f.get(sc)], b.none),
        f.set(at, m.i32.add(f.get(at), m.i32.shl(c.dim(K), I(2)))),
      ]),
    ]),
  ];
};
