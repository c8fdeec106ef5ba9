/** sum, mean, amax along an axis (kept with size 1). */
import { normAxis } from '../../../graph/types.js';
import type { GpuKernel } from './kernel.js';
import { outCoords } from './layout.js';

export const reduceKernel: GpuKernel = (c) => {
  const { code, vars } = outCoords(c);
  const x = c.types[0]!.shape.map(c.dim);
  const ax = normAxis(c.node.attrs['axis'] as number, x.length)!;
  const at = (k: string) => `${c.ins[0]}[${c.flat(vars.map((v, j) => (j === ax ? k : v)), x)}]`;
  const n = x[ax]!;
  const op = c.node.op;
  const init = op === 'amax' ? at('0.0') : '0.0';
  const step = op === 'amax' ? `acc = Math.max(acc, ${at('k')});` : `acc = acc + ${at('k')};`;
  return `${code}\nlet acc = ${init};\nfor (let k = 0.0; k < ${n}; k++) {\n  ${step}\n}\nreturn acc${op === 'mean' ? ` / (${n})` : ''};`;
};
