/**
 * fused rope_qk: attention scores with the rotary embedding applied inside the score loop.
 *
 *   q[S, H, D] ─ rope ─ transpose ─ (reshape [Hkv, g·S, D]) ─┐
 *   k[T, Hkv, D] ─ [rope] ─ transpose ───────────────────────┴─ matmul transB → [Hkv, g·S, T]
 *
 * The result's flat layout is scores[h, s, t] with h = kv·g + j (the reshape only regroups the g
 * query heads that share kv head kv), so the kernel writes
 *   out[(h·S + s)·T + t] = Σ_d rope(q)[s, h, d] · rope(k)[t, ⌊h/g⌋, d].
 * k's rope is absent in the step graph, whose cache holds rotated keys: they are copied as they are.
 * For each kv head it rotates that head's T keys once into a double scratch, then rotates each of
 * its g·S query rows and takes the dot products, four keys at a time. Rotated values are never
 * stored in the graph's buffers. The form is read from the body (`ropeQkForm`), not from node
 * positions; a body of any other form runs as its decomposition.
 */
import { type Dim, dimEq, dimScale, isStatic } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import { bodyArgIndex, type FusedBody } from '../../../graph/ops.js';
import { jsNum } from '../codegen.js';
import type { Kernel } from './kernel.js';
import { ropeHelpers } from './rope.js';

export interface RopeSide {
  readonly arg: number;
  /** False for keys that come rotated already (the step graph's cache): offset, base and half are then unused. */
  readonly rope: boolean;
  readonly offset: Dim;
  readonly base: number;
  readonly half: boolean;
}

export interface RopeQkForm {
  readonly q: RopeSide;
  readonly k: RopeSide;
  readonly H: number;
  readonly Hkv: number;
  readonly D: number;
}

/** The kernel's parameters if `body` has the form drawn above, else undefined. */
export function ropeQkForm(body: FusedBody): RopeQkForm | undefined {
  const byId = new Map(body.nodes.map((n) => [n.id, n]));
  const mm = byId.get(body.outputs[0]?.value ?? -1);
  if (mm?.op !== 'matmul' || mm.attrs['transB'] !== true) return undefined;
  const swap = (n: Node | undefined) => (n?.op === 'transpose' && (n.attrs['perm'] as number[]).join() === '1,0,2' ? n : undefined);
  let a = byId.get(mm.inputs[0]!);
  const group = a?.op === 'reshape' ? a : undefined;
  if (group) a = byId.get(group.inputs[0]!);
  const ta = swap(a);
  const tb = swap(byId.get(mm.inputs[1]!));
  const [rq, kb] = [byId.get(ta?.inputs[0] ?? -1), byId.get(tb?.inputs[0] ?? -1)];
  const rk = kb?.op === 'rope' ? kb : undefined;
  if (rq?.op !== 'rope') return undefined;
  const [qa, ka] = [byId.get(rq.inputs[0]!), rk ? byId.get(rk.inputs[0]!) : kb];
  const [qi, ki] = [bodyArgIndex(qa), bodyArgIndex(ka)];
  if (qi === undefined || ki === undefined) return undefined;
  const [S, H, D] = qa!.type.shape as [Dim, Dim, Dim];
  const [, Hkv, Dk] = ka!.type.shape as [Dim, Dim, Dim];
  if (!isStatic(H) || !isStatic(Hkv) || !isStatic(D) || !dimEq(D, Dk) || Hkv === 0 || H % Hkv !== 0) return undefined;
  if (group) {
    const want = [Hkv, dimScale(S, H / Hkv), D];
    if (group.type.shape.length !== 3 || !group.type.shape.every((d, i) => dimEq(d, want[i]!))) return undefined;
  } else if (H !== Hkv && Hkv !== 1) return undefined;
  const side = (arg: number, r: Node): RopeSide => ({ arg, rope: true, offset: r.attrs['offset'] as Dim, base: r.attrs['base'] as number, half: r.attrs['layout'] === 'half' });
  const plain: RopeSide = { arg: ki, rope: false, offset: 0, base: 1, half: false };
  return { q: side(qi, rq), k: rk ? side(ki, rk) : plain, H, Hkv, D };
}

const ROPE_QK = `/** scores[h, s, t] = rope(q)[s, h]·rope(k)[t, ⌊h/g⌋], g = H / Hkv; q rows at positions qOff + s, keys at kOff + t. */
let _scratch = new Float64Array(0);
function ropeQk(q, k, out, S, T, H, Hkv, D, qOff, kOff, qBase, kBase, qHalf, kHalf, kRope) {
  const g = H / Hkv;
  const qTab = ropeTable(qBase, D, Math.max(0, qOff + S));
  const kTab = kRope ? ropeTable(kBase, D, Math.max(0, kOff + T)) : undefined;
  if (_scratch.length < (T + 1) * D) _scratch = new Float64Array((T + 1) * D);
  const kr = _scratch, qo = T * D;
  for (let kv = 0; kv < Hkv; kv++) {
    // this kv head's keys, rotated once (or copied, when they come rotated)
    for (let t = 0; t < T; t++) {
      if (kRope) ropeRow(k, (t * Hkv + kv) * D, kr, t * D, D, kOff + t, kBase, kHalf, kTab);
      else for (let d = 0, x = (t * Hkv + kv) * D; d < D; d++) kr[t * D + d] = k[x + d];
    }
    for (let j = 0; j < g; j++) {
      const h = kv * g + j;
      for (let s = 0; s < S; s++) {
        ropeRow(q, (s * H + h) * D, kr, qo, D, qOff + s, qBase, qHalf, qTab);
        const o = (h * S + s) * T;
        let t = 0;
        for (; t + 4 <= T; t += 4) {
          const k0 = t * D, k1 = k0 + D, k2 = k1 + D, k3 = k2 + D;
          let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
          for (let d = 0; d < D; d++) {
            const x = kr[qo + d];
            s0 += x * kr[k0 + d]; s1 += x * kr[k1 + d]; s2 += x * kr[k2 + d]; s3 += x * kr[k3 + d];
          }
          out[o + t] = s0; out[o + t + 1] = s1; out[o + t + 2] = s2; out[o + t + 3] = s3;
        }
        for (; t < T; t++) {
          let s0 = 0;
          for (let d = 0, kt = t * D; d < D; d++) s0 += kr[qo + d] * kr[kt + d];
          out[o + t] = s0;
        }
      }
    }
  }
}`;

export const ropeQkKernel: Kernel = (c) => {
  const f = ropeQkForm(c.node.attrs['body'] as FusedBody)!;
  ropeHelpers(c);
  const fn = c.helper('ropeQk', ROPE_QK);
  const S = c.dim(c.types[f.q.arg]!.shape[0]!);
  const T = c.dim(c.types[f.k.arg]!.shape[0]!);
  const args = [c.ins[f.q.arg], c.ins[f.k.arg], c.out, S, T, f.H, f.Hkv, f.D, c.dim(f.q.offset), c.dim(f.k.offset), jsNum(f.q.base), jsNum(f.k.base), f.q.half, f.k.half, f.k.rope];
  return `${fn}(${args.join(', ')});`;
};
