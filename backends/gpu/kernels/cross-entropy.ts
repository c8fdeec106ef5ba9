/**
 * cross_entropy: one thread per row: the row's max m, s = Σ exp(x − m) in float32 in ascending
 * order, then log s + (m − x[target]) (two terms ≥ 0: nothing cancels). Targets come from a graph
 * input or a const, checked on the host (a target outside [0, V) is a K1017 there); the emitter
 * refuses computed ones, which a shader could not report (emit.ts).
 */
import type { GpuKernel } from './kernel.js';

export const crossEntropyKernel: GpuKernel = (c) => {
  const x = c.ins[0]!;
  const V = c.dim(c.types[0]!.shape.at(-1)!);
  return `let rb = i * ${V};
let m = ${x}[rb];
for (let k = 1.0; k < ${V}; k++) {
  m = Math.max(m, ${x}[rb + k]);
}
let s = 0.0;
for (let j = 0.0; j < ${V}; j++) {
  s = s + Math.exp(${x}[rb + j] - m);
}
let t = ${c.ins[1]}[i];
return Math.log(s) + (m - ${x}[rb + t]);`;
};
