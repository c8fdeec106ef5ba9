/** softmax along an axis: exp(x − max) / Σ exp(x − max), the sum in ascending order. */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const softmaxKernel: GpuKernel = (c) => {
  const { code, dims, vars } = outCoords(c);
  const ax = normAxis(c.node.attrs['axis'] as number, dims.length)!;
  const at = (k: string) => `${c.ins[0]}[${c.flat(vars.map((v, j) => (j === ax ? k : v)), dims)}]`;
  const n = dims[ax]!;
  return `${code}
let m = ${at('0.0')};
for (let k = 1.0; k < ${n}; k++) {
  m = Math.max(m, ${at('k')});
}
let sum = 0.0;
for (let j = 0.0; j < ${n}; j++) {
  sum = sum + Math.exp(${at('j')} - m);
}
return Math.exp(${c.ins[0]}[i] - m) / sum;`;
};
