/**
 * gather: out[i, …] = table[indices[i], …]. A shader cannot throw: the emitter takes indices only
 * from a graph input or a const, checked on the host first (an index outside [0, V) is a K1017),
 * and refuses computed ones. An index outside [0, V) would read 0 here.
 */
import type { GpuKernel } from './kernel.js';
import { prod } from './kernel.js';

export const gatherKernel: GpuKernel = (c) => {
  const [table, idx] = c.types as [NonNullable<(typeof c.types)[0]>, NonNullable<(typeof c.types)[0]>];
  const rows = c.dim(table.shape[0]!);
  const rest = prod(table.shape.slice(1).map(c.dim));
  const { code, vars } = c.coords('i', [prod(idx.shape.map(c.dim)), rest], 'g');
  return `${code}\nlet row = ${c.ins[1]}[${vars[0]}];\nif (row < 0.0 || row >= ${rows}) { return 0.0; }\nreturn ${c.ins[0]}[row * ${rest} + ${vars[1]}];`;
};
