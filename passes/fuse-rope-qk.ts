/**
 * fuse-rope-qk — rotate q and k on the fly inside the attention-score kernel.
 *
 *   q[S, H, hd]            k[T, Hkv, hd]
 *       │                      │
 *     rope (offset a)       [rope (offset b)]
 *       │                      │
 *   transpose [1,0,2]      transpose [1,0,2]
 *       │ [H, S, hd]           │ [Hkv, T, hd]
 *   (reshape [Hkv, g·S, hd])   │                 ⇒   fused 'rope_qk' (q, k) → [Hkv, g·S, T]
 *       └──── matmul transB ───┘
 *              [Hkv, g·S, T]
 *
 * The reshape is present when g = H / Hkv > 1 (GQA, MQA): it groups the g query heads that share
 * one kv head, and the fused kernel reads the grouping from it. k's rope is optional (and stays
 * outside when something else reads it). Every value between the operands
 * and the matmul must be read by nothing else (and not be an output), or computing it inside the
 * kernel would not save its buffer. The rotated values are never stored.
 *
 * In the full graph both sides have a rope (at offset 0). In the step graph after
 * insert-kv-cache the keys come rotated from the cache (the slice [0, pos + seq)), so the k side
 * is just the transpose and only q is rotated (at offset `pos`). The fused node's body is the exact
 * decomposition (the nodes above, in their order), and `ropeQkParts` reads the kernel's parameters
 * back from it. The scale, mask and softmax stay outside (fuse-elementwise and backends see them).
 */
import { type Dim, dimEq, dimScale, isStatic } from '../graph/dim.js';
import type { Node } from '../graph/graph.js';
import type { FusedBody } from '../graph/ops.js';
import type { Pass } from './pass.js';
import { type UseInfo, fusionPass, onlyUsedBy } from './rewrite.js';

export const ROPE_QK = 'rope_qk';

interface Match {
  readonly members: readonly Node[];
  /** q, k: the un-rotated operands */
  readonly operands: readonly [number, number];
}

const isHeadSwap = (n: Node | undefined): n is Node =>
  n !== undefined && n.op === 'transpose' && (n.attrs['perm'] as number[]).join() === '1,0,2';

/** Whether reshape `r` turns [H, S, hd] into [Hkv, g·S, hd] for a whole g. */
function groupsHeads(r: Node, from: readonly Dim[]): boolean {
  const [H, S, hd] = from as [Dim, Dim, Dim];
  const to = r.type.shape;
  if (to.length !== 3 || !isStatic(H) || !isStatic(to[0]!) || to[0] === 0 || H % to[0] !== 0) return false;
  return dimEq(to[1]!, dimScale(S, H / to[0])) && dimEq(to[2]!, hd);
}

function match(mm: Node, byId: ReadonlyMap<number, Node>, uses: UseInfo): Match | undefined {
  if (mm.op !== 'matmul' || mm.attrs['transB'] !== true) return undefined;
  const used = (n: Node, by: Node) => onlyUsedBy(uses, n.id, by.id);
  // q side: matmul ← [reshape] ← transpose ← rope
  let a = byId.get(mm.inputs[0]!);
  let group: Node | undefined;
  if (a?.op === 'reshape') {
    group = a;
    a = byId.get(a.inputs[0]!);
  }
  if (!isHeadSwap(a)) return undefined;
  const ropeQ = byId.get(a.inputs[0]!);
  if (ropeQ?.op !== 'rope' || (group && !groupsHeads(group, a.type.shape))) return undefined;
  // k side: matmul ← transpose ← rope, or matmul ← transpose (keys rotated already: the cache)
  const b = byId.get(mm.inputs[1]!);
  if (!isHeadSwap(b)) return undefined;
  const before = byId.get(b.inputs[0]!);
  const ropeK = before?.op === 'rope' && before !== ropeQ && onlyUsedBy(uses, before.id, b.id) ? before : undefined;
  const [q, k] = [ropeQ.inputs[0]!, ropeK ? ropeK.inputs[0]! : b.inputs[0]!];
  // The kernel indexes one kv head per batch entry: no broadcasting over heads.
  const qBatch = (group ?? a).type.shape[0]!;
  if (q === k || k === ropeQ.id || !dimEq(qBatch, b.type.shape[0]!)) return undefined;
  const chainQ = group ? [ropeQ, a, group] : [ropeQ, a];
  const links = [...chainQ.map((n, i) => [n, chainQ[i + 1] ?? mm] as const), [b, mm] as const];
  if (!links.every(([n, by]) => used(n, by))) return undefined;
  return { members: [...chainQ, ...(ropeK ? [ropeK] : []), b, mm], operands: [q, k] };
}

export const fuseRopeQk: Pass = fusionPass('fuse-rope-qk', 'rotate q and k inside the score kernel instead of storing rotated copies', ROPE_QK, match);

/** What a rope_qk kernel needs, read from the body. */
export interface RopeQkParts {
  readonly base: number;
  readonly layout: 'interleaved' | 'half';
  /** Position of q's first row. */
  readonly qOffset: Dim;
  /** Query heads per kv head (1 without grouping). */
  readonly groups: number;
  /** k's rope, when the keys are rotated in the kernel too (the full graph; not the step graph's cache). */
  readonly kRope?: { readonly offset: Dim; readonly base: number; readonly layout: 'interleaved' | 'half' };
}

export function ropeQkParts(body: FusedBody): RopeQkParts {
  const qArg = body.nodes.find((n) => n.op === 'input' && n.attrs['name'] === 'arg0')!;
  const qRope = body.nodes.find((n) => n.op === 'rope' && n.inputs[0] === qArg.id)!;
  const kRope = body.nodes.find((n) => n.op === 'rope' && n !== qRope);
  const group = body.nodes.find((n) => n.op === 'reshape');
  const H = qArg.type.shape[1] as number;
  const ropeOf = (r: Node) => ({ offset: r.attrs['offset'] as Dim, base: r.attrs['base'] as number, layout: r.attrs['layout'] as 'interleaved' | 'half' });
  const q = ropeOf(qRope);
  return {
    base: q.base,
    layout: q.layout,
    qOffset: q.offset,
    groups: group ? H / (group.type.shape[0] as number) : 1,
    ...(kRope ? { kRope: ropeOf(kRope) } : {}),
  };
}
