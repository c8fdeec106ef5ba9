/**
 * rope on x[S, H, D]. The cos/sin of each (token, pair) are computed on the host in doubles (as
 * the interpreter computes the angle), so the shader does no trigonometry on large angles, where
 * float32 sin/cos on a GPU would drift from the other backends. The table has a row per token up
 * to S's capacity, so its length is fixed, and is uploaded only when the offset changes.
 */
import type { GpuKernel } from './kernel.js';
import { lit } from './kernel.js';

export const ropeKernel: GpuKernel = (c) => {
  const [S, H, D] = c.types[0]!.shape.map(c.dim) as [string, string, string];
  const Dn = Number(D);
  const base = lit(c.node.attrs['base'] as number);
  const tab = c.hostArg('ropeAngles', [c.hostDim(c.node.attrs['offset'] as never, 'run'), c.hostDim(c.types[0]!.shape[0]!, 'cap'), String(Dn), base]);
  const { code, vars } = c.coords('i', [S, H, D], 'x');
  const [s, , d] = vars as [string, string, string];
  const h = lit(Dn / 2);
  const x = c.ins[0]!;
  const pair =
    c.node.attrs['layout'] === 'half'
      ? { first: `${d} < ${h}`, k: `(${d} < ${h} ? ${d} : ${d} - ${h})`, other: `(${d} < ${h} ? i + ${h} : i - ${h})` }
      : { first: `${d} - 2.0 * Math.floor(${d} / 2.0) == 0.0`, k: `Math.floor(${d} / 2.0)`, other: `(${d} - 2.0 * Math.floor(${d} / 2.0) == 0.0 ? i + 1.0 : i - 1.0)` };
  return `${code}
let t = (${s} * ${h} + ${pair.k}) * 2.0;
let cs = ${tab}[t];
let sn = ${tab}[t + 1.0];
let self = ${x}[i];
let other = ${x}[${pair.other}];
if (${pair.first}) { return self * cs - other * sn; }
return other * sn + self * cs;`;
};
