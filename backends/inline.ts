import type { Node } from '../graph/graph.js';
import { bodyArgIndex, type FusedBody } from '../graph/ops.js';

/**
 * A fused node's body, spliced into the program in its place: the body's nodes get fresh ids
 * (the result keeps the fused node's id), its args become the fused node's operands, and every
 * node takes the fused node's scope and source position. How a backend runs a fused pattern it
 * has no kernel for: as the decomposition that defines it.
 *
 * A body that returns one of its operands yields a copy of it, made with `copyOp` (a reshape to
 * the same shape; the gpu backend aliases reshapes, so it asks for a broadcast).
 */
export function inlineBody(n: Node, fresh: () => number, copyOp: 'reshape' | 'broadcast' = 'reshape'): Node[] {
  const body = n.attrs['body'] as FusedBody;
  const map = new Map<number, number>();
  const out: Node[] = [];
  const result = body.outputs[0]!.value;
  for (const b of body.nodes) {
    if (b.op === 'input') {
      map.set(b.id, n.inputs[bodyArgIndex(b)!]!);
      continue;
    }
    const id = b.id === result ? n.id : fresh();
    map.set(b.id, id);
    const m: Node = { id, op: b.op, inputs: b.inputs.map((i) => map.get(i)!), attrs: b.attrs, type: b.type, scope: n.scope };
    out.push(n.loc ? { ...m, loc: n.loc } : m);
  }
  if (!out.some((m) => m.id === n.id))
    out.push({ id: n.id, op: copyOp, inputs: [map.get(result)!], attrs: { shape: [...n.type.shape] }, type: n.type, scope: n.scope });
  return out;
}
