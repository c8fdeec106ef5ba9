/**
 * fuse-elementwise — trees of elementwise ops into one loop.
 *
 *     a      b    c ─ const 0.5               a, b, c: operands from outside
 *      \    /     |                           (any op, any shape that broadcasts)
 *       mul      neg          ⇒   fused 'elementwise' (a, b, c) → one loop over
 *         \     /                 the root's shape
 *           add      ← root
 *
 * A group grows from a root (an elementwise op, unary or binary, whose value is not absorbed by a
 * consumer) down through operands that are themselves elementwise, read by no node outside the
 * group, not graph outputs, and of the root's dtype and shape — so that the kernel is one loop
 * over one index space, with only the group's outside operands broadcasting into it. Small consts
 * (at most MAX_BODY_CONST elements) are copied into the body rather than passed as operands; an
 * outer const every user of which was fused goes away. Groups of one op (consts aside) are left
 * alone: there is nothing to fuse; so are groups that read nothing but consts (constant-fold's
 * business: a fused op needs an operand). Ops already inside a fused node's body stay there, and fused
 * nodes are never absorbed (they are not elementwise).
 *
 * The body is the exact decomposition (same ops, same order), so the fused node means what the
 * group meant. Runs after fuse-rope-qk and fuse-swiglu, which take their patterns first (SiLU·up
 * would otherwise be taken here), and after insert-kv-cache; dce runs after it.
 */
import { staticNumel, typeEq } from '../graph/types.js';
import type { Node } from '../graph/graph.js';
import { isElementwise } from '../graph/ops.js';
import type { Pass } from './pass.js';
import { Rewriter, emitFused, makeBody, useInfo } from './rewrite.js';

export const ELEMENTWISE = 'elementwise';
export const MAX_BODY_CONST = 64;

const smallConst = (n: Node): boolean => n.op === 'const' && (staticNumel(n.type.shape) ?? Infinity) <= MAX_BODY_CONST;

export const fuseElementwise: Pass = {
  name: 'fuse-elementwise',
  reason: 'chains of elementwise ops into one loop: no buffers between them',
  run(g) {
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    const uses = useInfo(g);
    // member id → root id, for every op of every group
    const groupOf = new Map<number, number>();
    const groups = new Map<number, Node[]>();
    // Walk backwards: a consumer's group is grown before its operands are looked at as roots.
    for (const root of [...g.nodes].reverse()) {
      if (!isElementwise(root.op) || groupOf.has(root.id)) continue;
      const ops = [root];
      const consts = new Map<number, Node>();
      const inGroup = new Set([root.id]);
      for (let k = 0; k < ops.length; k++)
        for (const i of ops[k]!.inputs) {
          const o = byId.get(i)!;
          if (inGroup.has(i)) continue;
          if (smallConst(o)) consts.set(i, o);
          const absorb =
            isElementwise(o.op) &&
            !groupOf.has(i) &&
            !uses.outputs.has(i) &&
            typeEq(o.type, root.type) &&
            (uses.users.get(i) ?? []).every((u) => inGroup.has(u));
          if (absorb) {
            ops.push(o);
            inGroup.add(i);
          }
        }
      // A group of consts alone is constant-fold's; a fused op needs at least one operand.
      const reads = ops.some((n) => n.inputs.some((i) => !inGroup.has(i) && !consts.has(i)));
      if (ops.length < 2 || !reads) continue;
      for (const n of ops) groupOf.set(n.id, root.id);
      groups.set(root.id, [...ops, ...consts.values()]);
    }
    // An outer const goes when every node reading it now holds its own copy.
    const dropConst = (n: Node) => smallConst(n) && !uses.outputs.has(n.id) && (uses.users.get(n.id) ?? []).every((u) => groupOf.has(u));

    const r = new Rewriter(g, 'fuse-elementwise');
    for (const n of g.nodes) {
      if ((groupOf.has(n.id) && !groups.has(n.id)) || dropConst(n)) continue;
      const members = groups.get(n.id);
      if (!members) {
        r.copy(n);
        continue;
      }
      const parts = makeBody(ELEMENTWISE, members, n.id, (i) => r.typeOf(r.get(i)));
      r.set(n.id, emitFused(r, ELEMENTWISE, parts, n));
    }
    return { graph: r.finish(), stats: { fused: groups.size, ops: groupOf.size } };
  },
};
