/** causal_mask: −∞ where key j lies after query i (j > i + offset), the operand elsewhere. */
import type { Dim } from '../../../graph/dim.js';
import { productOf } from '../codegen.js';
import type { Kernel } from './kernel.js';

const CAUSAL_MASK = `/** out[b, i, j] = j > i + off ? −∞ : x[b, i, j]. */
function causalMask(x, out, B, Q, K, off) {
  for (let b = 0, o = 0; b < B; b++)
    for (let i = 0; i < Q; i++)
      for (let j = 0; j < K; j++, o++) out[o] = j > i + off ? -Infinity : x[o];
}`;

export const causalMaskKernel: Kernel = (c) => {
  const d = c.dims(c.types[0]!.shape);
  const [Q, K] = d.slice(-2) as [string, string];
  const off = c.dim(c.node.attrs['offset'] as Dim);
  return `${c.helper('causalMask', CAUSAL_MASK)}(${c.ins[0]}, ${c.out}, ${productOf(d.slice(0, -2))}, ${Q}, ${K}, ${off});`;
};
