/** broadcast: the operand read at stride 0 along every dim it stretches. */
import { loopNest } from '../codegen.js';
import { broadcastStrides } from './elementwise.js';
import type { Kernel } from './kernel.js';

export const broadcastKernel: Kernel = (c) => {
  const out = c.node.type.shape;
  return loopNest(c.dims(out), [broadcastStrides(c, c.types[0]!.shape, out)], ([p]) => `${c.out}[o] = ${c.ins[0]}[${p}];`);
};
