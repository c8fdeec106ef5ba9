/**
 * fused causal_softmax: softmax over the last axis of causal_mask(x [· scale]). Row i of each
 * [Q, K] block keeps its first i + offset + 1 entries (clamped to [0, K]); the kernel takes the
 * softmax of those and writes zeros after them. Each kept value is the f32 product x·scale, as the
 * unfused mul stores it, and the softmax runs in doubles as the softmax kernel's does. A row with
 * nothing kept is NaN throughout, as the softmax of a row of −∞ is.
 */
import type { Dim } from '../../../graph/dim.js';
import { bodyArgIndex, type FusedBody } from '../../../graph/ops.js';
import { productOf } from '../codegen.js';
import type { Kernel } from './kernel.js';

export interface CausalSoftmaxForm {
  /** The scores' argument index. */
  readonly x: number;
  /** The one-element scale's argument index, when the body scales. */
  readonly scale?: number;
  readonly offset: Dim;
}

/** softmax(causal_mask(x)) or softmax(causal_mask(mul(x, s))) with s of one element, over the last axis. */
export function causalSoftmaxForm(body: FusedBody): CausalSoftmaxForm | undefined {
  const byId = new Map(body.nodes.map((n) => [n.id, n]));
  const sm = byId.get(body.outputs[0]?.value ?? -1);
  const rank = sm?.type.shape.length ?? 0;
  if (sm?.op !== 'softmax' || rank < 2 || (sm.attrs['axis'] !== -1 && sm.attrs['axis'] !== rank - 1)) return undefined;
  const mask = byId.get(sm.inputs[0]!);
  if (mask?.op !== 'causal_mask') return undefined;
  const offset = mask.attrs['offset'] as Dim;
  const inner = byId.get(mask.inputs[0]!);
  const x = bodyArgIndex(inner);
  if (x !== undefined) return { x, offset };
  if (inner?.op !== 'mul') return undefined;
  for (const [a, b] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const [xa, sa] = [byId.get(inner.inputs[a]!), byId.get(inner.inputs[b]!)];
    const [xi, si] = [bodyArgIndex(xa), bodyArgIndex(sa)];
    if (xi === undefined || si === undefined || xi === si) continue;
    if (xa!.type.shape.length === rank && sa!.type.shape.every((d) => d === 1)) return { x: xi, scale: si, offset };
  }
  return undefined;
}

const CAUSAL_SOFTMAX = `/** softmax of each row of x[b, i, ·] (· s) over its first i + off + 1 entries; zeros after them. */
function causalSoftmax(x, s, out, B, Q, K, off) {
  for (let b = 0, r = 0; b < B; b++)
    for (let i = 0; i < Q; i++, r += K) {
      const L = Math.min(K, Math.max(0, i + off + 1));
      if (L === 0) { out.fill(NaN, r, r + K); continue; }
      let m = -Infinity;
      for (let k = 0; k < L; k++) m = Math.max(m, Math.fround(x[r + k] * s));
      let t = 0;
      for (let k = 0; k < L; k++) t += Math.exp(Math.fround(x[r + k] * s) - m);
      for (let k = 0; k < L; k++) out[r + k] = Math.exp(Math.fround(x[r + k] * s) - m) / t;
      out.fill(0, r + L, r + K);
    }
}`;

export const causalSoftmaxKernel: Kernel = (c) => {
  const f = causalSoftmaxForm(c.node.attrs['body'] as FusedBody)!;
  const d = c.dims(c.types[f.x]!.shape);
  const [Q, K] = d.slice(-2) as [string, string];
  const s = f.scale === undefined ? '1' : `${c.ins[f.scale]}[0]`;
  return `${c.helper('causalSoftmax', CAUSAL_SOFTMAX)}(${c.ins[f.x]}, ${s}, ${c.out}, ${productOf(d.slice(0, -2))}, ${Q}, ${K}, ${c.dim(f.offset)});`;
};
