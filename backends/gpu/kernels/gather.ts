/**
 * gather: out[i, …] = table[indices[i], …]. An index outside [0, V) reads 0 here (a shader cannot
 * throw); the emitter checks indices that come straight from a graph input on the host first.
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
