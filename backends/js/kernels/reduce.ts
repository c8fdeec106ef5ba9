/**
 * sum, mean, amax along an axis: each lane (outer, ·, inner) folded in order, in doubles. The
 * lanes of one outer index go side by side, a row of x at a time: lane by lane, a sum over the
 * sequence axis of [seq, vocab] read one float per cache line.
 */
import type { Kernel } from './kernel.js';
import { axisAttr, splitAt } from './layout.js';

const SUM_LANES = `/** out[a, j] = Σₖ x[a, k, j] (÷ len for a mean), each lane summed in order of k, row by row of x. */
function sumLanes(x, out, outer, len, inner, mean) {
  const s = new Float64Array(inner);
  for (let a = 0; a < outer; a++) {
    s.fill(0);
    for (let k = 0; k < len; k++) {
      const b = (a * len + k) * inner;
      for (let j = 0; j < inner; j++) s[j] += x[b + j];
    }
    for (let j = 0; j < inner; j++) out[a * inner + j] = mean ? s[j] / len : s[j];
  }
}`;

const MAX_LANES = `/** out[a, j] = maxₖ x[a, k, j] (Math.max, so NaN wins; −∞ for an empty lane), row by row of x. */
function maxLanes(x, out, outer, len, inner) {
  const m = new Float64Array(inner);
  for (let a = 0; a < outer; a++) {
    m.fill(-Infinity);
    for (let k = 0; k < len; k++) {
      const b = (a * len + k) * inner;
      for (let j = 0; j < inner; j++) m[j] = Math.max(m[j], x[b + j]);
    }
    for (let j = 0; j < inner; j++) out[a * inner + j] = m[j];
  }
}`;

export const reduceKernel: Kernel = (c) => {
  const x = c.types[0]!;
  const [outer, len, inner] = splitAt(c, x.shape, axisAttr(c, x.shape.length));
  if (c.node.op === 'amax') return `${c.helper('maxLanes', MAX_LANES)}(${c.ins[0]}, ${c.out}, ${outer}, ${len}, ${inner});`;
  return `${c.helper('sumLanes', SUM_LANES)}(${c.ins[0]}, ${c.out}, ${outer}, ${len}, ${inner}, ${c.node.op === 'mean'});`;
};
