/** causal_mask: −∞ where key j > query i + offset. −∞ comes in as an argument (`s_inf`): GLSL and WGSL have no literal for it. */
import type { GpuKernel } from './kernel.js';

export const causalMaskKernel: GpuKernel = (c) => {
  const dims = c.node.type.shape.map(c.dim);
  const { code, vars } = c.coords('i', dims, 'o');
  const off = c.dim(c.node.attrs['offset'] as never);
  return `${code}\nif (${vars.at(-1)} > ${vars.at(-2)} + ${off}) { return -s_inf; }\nreturn ${c.ins[0]}[i];`;
};
