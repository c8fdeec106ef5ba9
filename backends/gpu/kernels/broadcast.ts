/** broadcast: x stretched to the result's shape. */
import { broadcastPrelude, operandIndex } from './elementwise.js';
import type { GpuKernel } from './kernel.js';

export const broadcastKernel: GpuKernel = (c) => {
  const { code, dims, vars } = broadcastPrelude(c);
  return `${code}\nreturn ${c.ins[0]}[${operandIndex(c, 0, dims, vars)}];`;
};
