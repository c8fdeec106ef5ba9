/**
 * scatter_add: out[v, j] = Σ updates[k, j] over the positions k whose index is v, summed in
 * float32 in ascending k (one thread per output element walks every index). A shader cannot
 * throw, so the emitter takes indices only from a graph input or a const, checked on the host
 * (an index outside [0, rows) is a K1017 there), and refuses computed ones (emit.ts).
 */
import type { GpuKernel } from './kernel.js';
import { prod } from './kernel.js';

export const scatterAddKernel: GpuKernel = (c) => {
  const [idx, upd] = c.types as [NonNullable<(typeof c.types)[0]>, NonNullable<(typeof c.types)[0]>];
  const n = prod(idx.shape.map(c.dim));
  const row = prod(upd.shape.slice(idx.shape.length).map(c.dim));
  const { code, vars } = c.coords('i', [c.dim(c.node.attrs['rows'] as never), row], 's');
  return `${code}
let acc = 0.0;
for (let k = 0.0; k < ${n}; k++) {
  if (${c.ins[0]}[k] == ${vars[0]}) {
    acc = acc + ${c.ins[1]}[k * ${row} + ${vars[1]}];
  }
}
return acc;`;
};
