/** slice: the result's coordinate along the axis, shifted by start. */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const sliceKernel: GpuKernel = (c) => {
  const { code, vars } = outCoords(c);
  const x = c.types[0]!.shape.map(c.dim);
  const ax = normAxis(c.node.attrs['axis'] as number, x.length)!;
  const start = c.dim(c.node.attrs['start'] as never);
  return `${code}\nreturn ${c.ins[0]}[${c.flat(vars.map((v, k) => (k === ax ? `(${v} + ${start})` : v)), x)}];`;
};
