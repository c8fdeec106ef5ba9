/** iota: start + the coordinate along the axis. */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';

export const iotaKernel: GpuKernel = (c) => {
  const dims = c.node.type.shape.map(c.dim);
  const ax = normAxis(c.node.attrs['axis'] as number, dims.length)!;
  const { code, vars } = c.coords('i', dims, 'o');
  return `${code}\nreturn ${c.dim(c.node.attrs['start'] as never)} + ${vars[ax]};`;
};
