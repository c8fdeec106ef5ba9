/**
 * fuse-swiglu — the gated feed-forward's first half in one kernel.
 *
 *        x ──────────────┬──────────────┐
 *        │               │              │
 *   matmul(·, W1ᵀ)  matmul(·, W3ᵀ)      │        x[…, D], W1[F, D], W3[F, D]
 *        │  gate         │  up          │
 *      silu              │              │   ⇒   fused 'swiglu' (x, W1, W3) → […, F]
 *        └──── mul ──────┘
 *
 * Matches mul(silu(matmul(x, W1, transB)), matmul(x, W3, transB)) with the mul's operands in
 * either order, both matmuls reading the same x and rank-2 weights, and the gate, its silu and the
 * up projection read by nothing else (and not outputs). The DSL emits SwiGLU as the `silu` op;
 * a custom arrow spelling x·sigmoid(x) is not matched (fuse-elementwise takes its chain).
 *
 * The fused node's body is the exact decomposition (same ops, same order), so it means what the
 * four nodes meant. Leaves the down projection alone. Runs after insert-kv-cache (which does not
 * touch the FFN) and before fuse-elementwise, which would otherwise take silu·mul as a chain.
 */
import type { Node } from '../graph/graph.js';
import type { Pass } from './pass.js';
import { fusionPass, onlyUsedBy, type UseInfo } from './rewrite.js';

export const SWIGLU = 'swiglu';

interface Match {
  readonly members: readonly Node[];
  /** x, W1 (gate), W3 (up) */
  readonly operands: readonly [number, number, number];
}

function isLinear(n: Node | undefined, byId: ReadonlyMap<number, Node>): n is Node {
  return n !== undefined && n.op === 'matmul' && n.attrs['transB'] === true && byId.get(n.inputs[1]!)?.type.shape.length === 2;
}

function match(mul: Node, byId: ReadonlyMap<number, Node>, uses: UseInfo): Match | undefined {
  if (mul.op !== 'mul') return undefined;
  for (const [a, b] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const act = byId.get(mul.inputs[a]!);
    const up = byId.get(mul.inputs[b]!);
    if (act?.op !== 'silu' || !isLinear(up, byId)) continue;
    const gate = byId.get(act.inputs[0]!);
    if (!isLinear(gate, byId) || gate.inputs[0] !== up.inputs[0]) continue;
    const [x, w1, w3] = [gate.inputs[0]!, gate.inputs[1]!, up.inputs[1]!];
    if (new Set([x, w1, w3]).size !== 3) continue;
    if (!onlyUsedBy(uses, act.id, mul.id) || !onlyUsedBy(uses, up.id, mul.id) || !onlyUsedBy(uses, gate.id, act.id)) continue;
    return { members: [gate, act, up, mul], operands: [x, w1, w3] };
  }
  return undefined;
}

export const fuseSwiglu: Pass = fusionPass('fuse-swiglu', 'gate and up projections with the SiLU product in one kernel', SWIGLU, match);
