/** update_slice: the update's element inside [start, start + len) along the axis, else the base's. */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const updateSliceKernel: GpuKernel = (c) => {
  const { code, vars } = outCoords(c);
  const u = c.types[1]!.shape.map(c.dim);
  const ax = normAxis(c.node.attrs['axis'] as number, u.length)!;
  const start = c.dim(c.node.attrs['start'] as never);
  const v = vars[ax]!;
  const cs = vars.map((x, k) => (k === ax ? `(${x} - (${start}))` : x));
  return `${code}\nif (${v} >= ${start} && ${v} < ${start} + ${u[ax]}) { return ${c.ins[1]}[${c.flat(cs, u)}]; }\nreturn ${c.ins[0]}[i];`;
};
