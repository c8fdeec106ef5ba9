/** concat: each operand's outer runs written at its running offset along the axis. */
import { type Dim, dimAdd } from '../../../graph/dim.js';
import { copyRows } from './layout.js';
import { axisOf, type WasmKernel } from './kernel.js';

export const concatKernel: WasmKernel = (c) => {
  const { m } = c;
  const oshape = c.node.type.shape;
  const ax = axisOf(c.node, oshape.length);
  let at: Dim = 0;
  return c.types.map((t, i) => {
    const off = at;
    at = dimAdd(at, t.shape[ax]!);
    const len = () => c.numel(t.shape.slice(ax));
    return copyRows(c, () => c.in(i), () => m.i32.const(0), len, () => c.out(), () => m.i32.mul(c.dim(off), c.numel(oshape.slice(ax + 1))), () => c.numel(oshape.slice(ax)), () => c.numel(oshape.slice(0, ax)), len);
  });
};
