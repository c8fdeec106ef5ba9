/** transpose: the operand's coordinate along axis perm[j] is the result's coordinate j. */
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const transposeKernel: GpuKernel = (c) => {
  const { code, vars } = outCoords(c);
  const perm = c.node.attrs['perm'] as number[];
  const x = c.types[0]!.shape.map(c.dim);
  const cs = new Array<string>(x.length);
  perm.forEach((p, j) => (cs[p] = vars[j]!));
  return `${code}\nreturn ${c.ins[0]}[${c.flat(cs, x)}];`;
};
