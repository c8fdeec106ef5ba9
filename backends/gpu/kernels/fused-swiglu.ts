/**
 * fused swiglu: act(x·W1ᵀ) ⊙ (x·W3ᵀ) in one kernel, for a body of the form the js backend's
 * `swigluForm` reads (act is SiLU for SwiGLU; any unary op is read from the body; any other form
 * runs as its decomposition, see index.ts). One element runs the gate and up dot products side by
 * side over k in ascending order, in float32 like the matmul kernel, then applies act to the gate
 * and multiplies: the gate and up projections are never stored.
 */
import type { FusedBody } from '../../../graph/ops.js';
import { swigluForm } from '../../js/kernels/fused-swiglu.js';
import { unaryExpr } from './elementwise.js';
import type { GpuKernel } from './kernel.js';
import { prod } from './kernel.js';

export function swigluGpuForm(body: FusedBody): boolean {
  return swigluForm(body) !== undefined;
}

export const swigluKernel: GpuKernel = (c) => {
  const f = swigluForm(c.node.attrs['body'] as FusedBody)!;
  const xd = c.types[f.x]!.shape.map(c.dim);
  const K = xd.at(-1)!;
  const N = c.dim(c.types[f.gate]!.shape[0]!);
  const { code, vars } = c.coords('i', [prod(xd.slice(0, -1)), N], 'r');
  const [x, wg, wu] = [c.ins[f.x]!, c.ins[f.gate]!, c.ins[f.up]!];
  return `${code}
let xb = ${vars[0]} * ${K};
let wb = ${vars[1]} * ${K};
let gs = 0.0;
let us = 0.0;
for (let k = 0.0; k < ${K}; k++) {
  let xv = ${x}[xb + k];
  gs = gs + xv * ${wg}[wb + k];
  us = us + xv * ${wu}[wb + k];
}
let ga = ${unaryExpr(f.act, 'gs')};
return ga * us;`;
};
