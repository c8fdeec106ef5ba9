/**
 * slice: outer runs of (end − start)·inner elements; bounds checked when run (K1009). In place (a
 * view of its operand's first rows, see layout.ts) it only checks the bounds.
 */
import type { Dim } from '../../../graph/dim.js';
import { copyRows } from './layout.js';
import { FAIL, axisOf, type WasmKernel } from './kernel.js';

export const sliceKernel: WasmKernel = (c) => {
  const { m } = c;
  const shape = c.types[0]!.shape;
  const ax = axisOf(c.node, shape.length);
  const [start, end] = [c.node.attrs['start'] as Dim, c.node.attrs['end'] as Dim];
  const inner = () => c.numel(shape.slice(ax + 1));
  const len = () => m.i32.mul(m.i32.sub(c.dim(end), c.dim(start)), inner());
  const bad = m.i32.or(m.i32.or(m.i32.lt_s(c.dim(start), m.i32.const(0)), m.i32.lt_s(c.dim(end), c.dim(start))), m.i32.gt_s(c.dim(end), c.dim(shape[ax]!)));
  return [
    m.if(bad, c.fail(FAIL.sliceBounds, c.dim(start), c.dim(end), c.dim(shape[ax]!))),
    ...(c.inPlace ? [] : [copyRows(c, () => c.in(0), () => m.i32.mul(c.dim(start), inner()), () => c.numel(shape.slice(ax)), () => c.out(), () => m.i32.const(0), len, () => c.numel(shape.slice(0, ax)), len)]),
  ];
};
