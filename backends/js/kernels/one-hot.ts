/** one_hot: a row of `depth` zeros per index, with a 1 at the index; an index outside [0, depth) leaves its row zero. */
import type { Dim } from '../../../graph/dim.js';
import type { Kernel } from './kernel.js';

const ONE_HOT = `/** out[i, v] = 1 where x[i] = v, else 0 (a row of zeros for x[i] outside [0, depth)). */
function oneHot(x, out, n, depth) {
  out.fill(0);
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v >= 0 && v < depth) out[i * depth + v] = 1;
  }
}`;

export const oneHotKernel: Kernel = (c) =>
  `${c.helper('oneHot', ONE_HOT)}(${c.ins[0]}, ${c.out}, ${c.numel(c.types[0]!.shape)}, ${c.dim(c.node.attrs['depth'] as Dim)});`;
