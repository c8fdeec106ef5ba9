/**
 * matmul: one result element is a dot product over K, summed in float32 in ascending k (the GL
 * and WebGPU paths round after every multiply and add; the js backend's float32 loop does the same).
 */
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const matmulKernel: GpuKernel = (c) => {
  const { code, dims, vars } = outCoords(c);
  const tb = c.node.attrs['transB'] === true;
  const [at, bt] = [c.types[0]!, c.types[1]!];
  const a = at.shape.map(c.dim);
  const b = bt.shape.map(c.dim);
  const r = dims.length;
  const [m, n] = [vars[r - 2]!, vars[r - 1]!];
  const K = a.at(-1)!;
  const batch = (shape: readonly string[]) => {
    const lead = r - shape.length;
    return shape.slice(0, -2).map((d, k) => (d === '1.0' && dims[k + lead] !== '1.0' ? '0.0' : vars[k + lead]!));
  };
  const aBase = c.flat([...batch(a), m, '0.0'], a);
  const bBase = c.flat([...batch(b), tb ? n : '0.0', tb ? '0.0' : n], b);
  const bStep = tb ? '1.0' : b.at(-1)!;
  return `${code}
let ab = ${aBase};
let bb = ${bBase};
let acc = 0.0;
for (let k = 0.0; k < ${K}; k++) {
  acc = acc + ${c.ins[0]}[ab + k] * ${c.ins[1]}[bb + k * ${bStep}];
}
return acc;`;
};
