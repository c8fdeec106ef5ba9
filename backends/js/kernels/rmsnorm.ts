/** rmsnorm over the last axis: x / √(mean(x²) + eps) · w, per row, in doubles. */
import { jsNum, productOf } from '../codegen.js';
import type { Kernel } from './kernel.js';

const RMSNORM_ROWS = `/** out[r, i] = x[r, i] / √(Σᵢ x[r, i]² / D + eps) · w[i]. */
function rmsnormRows(x, w, out, rows, D, eps) {
  for (let r = 0; r < rows; r++) {
    const b = r * D;
    let s = 0;
    for (let i = 0; i < D; i++) s += x[b + i] * x[b + i];
    const q = Math.sqrt(s / D + eps);
    for (let i = 0; i < D; i++) out[b + i] = (x[b + i] / q) * w[i];
  }
}`;

export const rmsnormKernel: Kernel = (c) => {
  const d = c.dims(c.types[0]!.shape);
  const D = d.at(-1)!;
  const rows = productOf(d.slice(0, -1));
  return `${c.helper('rmsnormRows', RMSNORM_ROWS)}(${c.ins[0]}, ${c.ins[1]}, ${c.out}, ${rows}, ${D}, ${jsNum(c.node.attrs['eps'] as number)});`;
};
