/** one_hot: 1 where the column is the row's index, else 0 (an index outside [0, depth) matches no column). */
import type { GpuKernel } from './kernel.js';
import { prod } from './kernel.js';

export const oneHotKernel: GpuKernel = (c) => {
  const depth = c.dim(c.node.attrs['depth'] as never);
  const { code, vars } = c.coords('i', [prod(c.types[0]!.shape.map(c.dim)), depth], 'h');
  return `${code}\nreturn ${c.ins[0]}[${vars[0]}] == ${vars[1]} ? 1.0 : 0.0;`;
};
