/**
 * update_slice: the base copied to the result (skipped in place, when the result is the state
 * buffer itself), then the update's outer runs written at `start`; bounds checked (K1009).
 */
import type { Dim } from '../../../graph/dim.js';
import { copyRows } from './layout.js';
import { FAIL, axisOf, type WasmKernel } from './kernel.js';

export const updateSliceKernel: WasmKernel = (c) => {
  const { m } = c;
  const shape = c.types[0]!.shape;
  const ushape = c.types[1]!.shape;
  const ax = axisOf(c.node, shape.length);
  const start = c.node.attrs['start'] as Dim;
  const inner = () => c.numel(shape.slice(ax + 1));
  const len = () => c.numel(ushape.slice(ax));
  const bad = m.i32.or(m.i32.lt_s(c.dim(start), m.i32.const(0)), m.i32.gt_s(m.i32.add(c.dim(start), c.dim(ushape[ax]!)), c.dim(shape[ax]!)));
  return [
    m.if(bad, c.fail(FAIL.sliceBounds, c.dim(start), m.i32.add(c.dim(start), c.dim(ushape[ax]!)), c.dim(shape[ax]!))),
    ...(c.inPlace ? [] : [m.memory.copy(c.out(), c.in(0), m.i32.shl(c.numel(shape), m.i32.const(2)))]),
    copyRows(c, () => c.in(1), () => m.i32.const(0), len, () => c.out(), () => m.i32.mul(c.dim(start), inner()), () => c.numel(shape.slice(ax)), () => c.numel(shape.slice(0, ax)), len),
  ];
};
