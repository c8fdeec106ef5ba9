/** sum, mean, amax along an axis: each lane (outer, ·, inner) folded in order, in doubles. */
import type { Kernel } from './kernel.js';
import { axisAttr, splitAt } from './layout.js';

const SUM_LANES = `/** out[a, j] = Σₖ x[a, k, j] (÷ len for a mean), summed in order. */
function sumLanes(x, out, outer, len, inner, mean) {
  for (let a = 0; a < outer; a++)
    for (let j = 0; j < inner; j++) {
      const b = a * len * inner + j;
      let s = 0;
      for (let k = 0; k < len; k++) s += x[b + k * inner];
      out[a * inner + j] = mean ? s / len : s;
    }
}`;

const MAX_LANES = `/** out[a, j] = maxₖ x[a, k, j] (Math.max, so NaN wins; −∞ for an empty lane). */
function maxLanes(x, out, outer, len, inner) {
  for (let a = 0; a < outer; a++)
    for (let j = 0; j < inner; j++) {
      const b = a * len * inner + j;
      let m = -Infinity;
      for (let k = 0; k < len; k++) m = Math.max(m, x[b + k * inner]);
      out[a * inner + j] = m;
    }
}`;

export const reduceKernel: Kernel = (c) => {
  const x = c.types[0]!;
  const [outer, len, inner] = splitAt(c, x.shape, axisAttr(c, x.shape.length));
  if (c.node.op === 'amax') return `${c.helper('maxLanes', MAX_LANES)}(${c.ins[0]}, ${c.out}, ${outer}, ${len}, ${inner});`;
  return `${c.helper('sumLanes', SUM_LANES)}(${c.ins[0]}, ${c.out}, ${outer}, ${len}, ${inner}, ${c.node.op === 'mean'});`;
};
