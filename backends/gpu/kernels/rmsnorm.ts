/** rmsnorm over the last axis: x / √(mean(x²) + eps) · w. */
import { lit, prod } from './kernel.js';
import type { GpuKernel } from './kernel.js';

export const rmsnormKernel: GpuKernel = (c) => {
  const x = c.types[0]!.shape.map(c.dim);
  const D = x.at(-1)!;
  const { code, vars } = c.coords('i', [prod(x.slice(0, -1)), D], 'r');
  const eps = lit(c.node.attrs['eps'] as number);
  return `${code}
let base = ${vars[0]} * ${D};
let ss = 0.0;
for (let k = 0.0; k < ${D}; k++) {
  let v = ${c.ins[0]}[base + k];
  ss = ss + v * v;
}
return ${c.ins[0]}[i] / Math.sqrt(ss / ${D} + ${eps}) * ${c.ins[1]}[${vars[1]}];`;
};
