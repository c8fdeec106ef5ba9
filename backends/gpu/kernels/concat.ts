/** concat: the result's coordinate along the axis picks the operand. */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';

export const concatKernel: GpuKernel = (c) => {
  const dims = c.node.type.shape.map(c.dim);
  const ax = normAxis(c.node.attrs['axis'] as number, dims.length)!;
  const { code, vars } = c.coords('i', dims, 'o');
  const lines = [code];
  let start = '0.0';
  c.types.forEach((t, j) => {
    const shape = t.shape.map(c.dim);
    const end = `${start} + ${shape[ax]}`;
    const cs = vars.map((v, k) => (k === ax ? `(${v} - (${start}))` : v));
    const read = `return ${c.ins[j]}[${c.flat(cs, shape)}];`;
    lines.push(j === c.types.length - 1 ? read : `if (${vars[ax]} < ${end}) { ${read} }`);
    start = `(${end})`;
  });
  return lines.join('\n');
};
