/** transpose: the output walked in order, the operand read through its permuted strides. */
import { loopNest, stridesOf } from '../codegen.js';
import type { Kernel } from './kernel.js';

export const transposeKernel: Kernel = (c) => {
  const perm = c.node.attrs['perm'] as number[];
  const xs = stridesOf(c.dims(c.types[0]!.shape));
  return loopNest(c.dims(c.node.type.shape), [perm.map((p) => xs[p]!)], ([p]) => `${c.out}[o] = ${c.ins[0]}[${p}];`);
};
