/**
 * fused rope_qk: attention scores with the rotary embedding applied inside the dot product, for
 * a body of the form the js backend's `ropeQkForm` reads (any other form runs as its
 * decomposition, see index.ts). The result [Hkv, g·S, T] is laid out scores[h, s, t] with
 * h = kv·g + j, so one element is
 *   out[(h·S + s)·T + t] = Σ_d rope(q)[s, h, d] · rope(k)[t, ⌊h/g⌋, d],   g = H / Hkv,
 * with q's token s at position qOffset + s and k's token t at kOffset + t, each side with its own
 * base and layout (interleaved pairs (2i, 2i+1), or half: (i, i + D/2)). Each rotated value is
 * computed as the rope kernel computes it and the rotated q and k are never stored. When both
 * sides share a layout, the loop runs over pairs (each element and cos/sin read once): for
 * interleaved pairs the sum is in ascending d, as the decomposition's matmul sums; for half pairs
 * the two halves sum apart and then add. Mixed layouts run over d, rotating each element on its
 * own. Keys that come rotated (the step graph's cache: no k rope) are read as they are. cos/sin
 * come from host tables in doubles (see rope.ts); a k table (offset 0 in a model) is uploaded once.
 */
import type { Dim } from '../../../graph/dim.js';
import type { FusedBody } from '../../../graph/ops.js';
import { ropeQkForm, type RopeQkForm, type RopeSide } from '../../js/kernels/fused-rope-qk.js';
import type { GpuKernel, GpuKernelCtx } from './kernel.js';
import { lit } from './kernel.js';

export function ropeQkGpuForm(body: FusedBody): boolean {
  return ropeQkForm(body) !== undefined;
}

/** Statements that leave side `p`'s rotated element d of row `base` (token `row`) in `${p}r`. */
function rotated(c: GpuKernelCtx, p: string, x: string, side: RopeSide, rows: Dim, D: number, base: string, row: string): string {
  const tab = c.hostArg('ropeAngles', [c.hostDim(side.offset, 'run'), c.hostDim(rows, 'cap'), String(D), lit(side.base)]);
  const h = lit(D / 2);
  // ${p}o: 0 for the first element of its pair, 1 for the second; ${p}k: the pair's index
  const pair = side.half
    ? [`let ${p}o = d < ${h} ? 0.0 : 1.0;`, `let ${p}k = d - ${p}o * ${h};`, `let ${p}x = ${x}[${base} + d + ${h} - 2.0 * ${p}o * ${h}];`]
    : [`let ${p}k = Math.floor(d / 2.0);`, `let ${p}o = d - 2.0 * ${p}k;`, `let ${p}x = ${x}[${base} + d + 1.0 - 2.0 * ${p}o];`];
  return [
    ...pair,
    `let ${p}s = ${x}[${base} + d];`,
    `let ${p}t = (${row} * ${h} + ${p}k) * 2.0;`,
    `let ${p}c = ${tab}[${p}t];`,
    `let ${p}n = ${tab}[${p}t + 1.0];`,
    `let ${p}r = ${p}o == 0.0 ? ${p}s * ${p}c - ${p}x * ${p}n : ${p}x * ${p}n + ${p}s * ${p}c;`,
  ].join('\n  ');
}

/** The loop over pairs i < D/2 for sides of one layout. */
function pairLoop(c: GpuKernelCtx, f: RopeQkForm, S: Dim, T: Dim, s: string, t: string): string {
  const tab = (side: RopeSide, rows: Dim) => c.hostArg('ropeAngles', [c.hostDim(side.offset, 'run'), c.hostDim(rows, 'cap'), String(f.D), lit(side.base)]);
  const qt = tab(f.q, S);
  const kt = f.k.rope ? tab(f.k, T) : undefined;
  const h = lit(f.D / 2);
  // p, not i: i is the element's flat index
  const [a, b] = f.q.half ? ['p', `p + ${h}`] : ['2.0 * p', '2.0 * p + 1.0'];
  const [q, k] = [c.ins[f.q.arg]!, c.ins[f.k.arg]!];
  return `let acc = 0.0;
let acc2 = 0.0;
for (let p = 0.0; p < ${h}; p++) {
  let qa = ${q}[qb + ${a}];
  let qz = ${q}[qb + ${b}];
  let ka = ${k}[kb + ${a}];
  let kz = ${k}[kb + ${b}];
  let qi = (${s} * ${h} + p) * 2.0;
  let qc = ${qt}[qi];
  let qn = ${qt}[qi + 1.0];${
    kt
      ? `
  let ki = (${t} * ${h} + p) * 2.0;
  let kc = ${kt}[ki];
  let kn = ${kt}[ki + 1.0];
  acc = acc + (qa * qc - qz * qn) * (ka * kc - kz * kn);
  ${f.q.half ? 'acc2 = acc2' : 'acc = acc'} + (qa * qn + qz * qc) * (ka * kn + kz * kc);`
      : `
  acc = acc + (qa * qc - qz * qn) * ka;
  ${f.q.half ? 'acc2 = acc2' : 'acc = acc'} + (qa * qn + qz * qc) * kz;`
  }
}
return acc + acc2;`;
}

export const ropeQkKernel: GpuKernel = (c) => {
  const f = ropeQkForm(c.node.attrs['body'] as FusedBody)!;
  const S = c.types[f.q.arg]!.shape[0]!;
  const T = c.types[f.k.arg]!.shape[0]!;
  const { code, vars } = c.coords('i', [lit(f.H), c.dim(S), c.dim(T)], 'o');
  const [h, s, t] = vars as [string, string, string];
  const D = lit(f.D);
  const head = `${code}
let qb = (${s} * ${lit(f.H)} + ${h}) * ${D};
let kb = (${t} * ${lit(f.Hkv)} + Math.floor((${h} + 0.5) / ${lit(f.H / f.Hkv)})) * ${D};`;
  if (!f.k.rope || f.q.half === f.k.half) return `${head}\n${pairLoop(c, f, S, T, s, t)}`;
  return `${head}
let acc = 0.0;
for (let d = 0.0; d < ${D}; d++) {
  ${rotated(c, 'q', c.ins[f.q.arg]!, f.q, S, f.D, 'qb', s)}
  ${rotated(c, 'k', c.ins[f.k.arg]!, f.k, T, f.D, 'kb', t)}
  acc = acc + qr * kr;
}
return acc;`;
};
