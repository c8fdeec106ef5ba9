/**
 * softmax along an axis: max, then Σ exp(x − max), then exp(x − max) / Σ again. The exponentials
 * are recomputed rather than stored, so each result is one rounding from the double-precision
 * value (storing them in the f32 output would round twice).
 */
import type { Kernel } from './kernel.js';
import { axisAttr, splitAt } from './layout.js';

const SOFTMAX_LANES = `/** softmax of each lane x[a, ·, j]. */
function softmaxLanes(x, out, outer, len, inner) {
  for (let a = 0; a < outer; a++)
    for (let j = 0; j < inner; j++) {
      const b = a * len * inner + j;
      let m = -Infinity;
      for (let k = 0; k < len; k++) m = Math.max(m, x[b + k * inner]);
      let s = 0;
      for (let k = 0; k < len; k++) s += Math.exp(x[b + k * inner] - m);
      for (let k = 0; k < len; k++) out[b + k * inner] = Math.exp(x[b + k * inner] - m) / s;
    }
}`;

export const softmaxKernel: Kernel = (c) => {
  const x = c.types[0]!;
  const [outer, len, inner] = splitAt(c, x.shape, axisAttr(c, x.shape.length));
  return `${c.helper('softmaxLanes', SOFTMAX_LANES)}(${c.ins[0]}, ${c.out}, ${outer}, ${len}, ${inner});`;
};
