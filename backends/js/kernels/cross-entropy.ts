/**
 * cross_entropy: per row of V logits, logsumexp − the target's logit, in doubles: the row's max m,
 * s = Σ exp(x − m), then log s + (m − x[target]) — two terms ≥ 0, so nothing cancels. A target
 * outside [0, V) is an error (K1017), as gather's index is.
 */
import { productOf } from '../codegen.js';
import { esc, type Kernel } from './kernel.js';

const CROSS_ENTROPY = `/** out[r] = log Σⱼ exp(x[r, j] − m) + (m − x[r, t[r]]), m = maxⱼ x[r, j]. */
function crossEntropy(x, t, out, rows, V, where) {
  for (let r = 0; r < rows; r++) {
    const k = t[r];
    if (!(k >= 0 && k < V)) throw fail('K1017', \`\${where}: target \${k} at position \${r} is outside [0, \${V})\`);
    const b = r * V;
    let m = -Infinity;
    for (let j = 0; j < V; j++) m = Math.max(m, x[b + j]);
    let s = 0;
    for (let j = 0; j < V; j++) s += Math.exp(x[b + j] - m);
    out[r] = Math.log(s) + (m - x[b + k]);
  }
}`;

export const crossEntropyKernel: Kernel = (c) => {
  const d = c.dims(c.types[0]!.shape);
  return `${c.helper('crossEntropy', CROSS_ENTROPY)}(${c.ins[0]}, ${c.ins[1]}, ${c.out}, ${productOf(d.slice(0, -1))}, ${d.at(-1)!}, \`${esc(c.where)}\`);`;
};
