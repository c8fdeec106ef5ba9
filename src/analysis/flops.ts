import { evalDim } from '../../graph/dim.js';
import type { Graph, Node } from '../../graph/graph.js';
import { type OpKind, isElementwise } from '../../graph/ops.js';
import { numel } from '../../graph/types.js';

/**
 * Floating-point operations of one run of a graph, counted per node from its shapes with the
 * symbols bound. The conventions (a multiply-add is 2 FLOPs; transcendental functions count 1):
 *   matmul             2·M·N·K per batch element
 *   elementwise ops    1 per output element
 *   sum, mean, amax    1 per input element
 *   softmax            5 per element (max, subtract, exp, sum, divide)
 *   rmsnorm            4 per element (square, sum, scale, weight)
 *   rope               3 per element (a 2×2 rotation per pair: 4 multiplies, 2 adds)
 *   causal_mask        1 per element (a compare)
 *   sources and layout ops (reshape, transpose, slice, concat, broadcast, gather): 0
 */

export interface FlopCount {
  readonly total: number;
  /** FLOPs per op kind, only the kinds that do arithmetic. */
  readonly byOp: Readonly<Partial<Record<OpKind, number>>>;
}

const PER_ELEMENT: Partial<Record<OpKind, number>> = { softmax: 5, rmsnorm: 4, rope: 3, causal_mask: 1 };

export function nodeFlops(n: Node, inputOf: (id: number) => Node, env: Readonly<Record<string, number>>): number {
  const out = () => numel(n.type.shape, env);
  switch (n.op) {
    case 'matmul': {
      const k = evalDim(inputOf(n.inputs[0]!).type.shape.at(-1)!, env);
      return 2 * out() * k;
    }
    case 'sum':
    case 'mean':
    case 'amax':
      return numel(inputOf(n.inputs[0]!).type.shape, env);
    default: {
      if (isElementwise(n.op)) return out();
      const per = PER_ELEMENT[n.op];
      return per === undefined ? 0 : per * out();
    }
  }
}

export function graphFlops(g: Graph, env: Readonly<Record<string, number>>): FlopCount {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const inputOf = (id: number) => byId.get(id)!;
  const byOp: Partial<Record<OpKind, number>> = {};
  let total = 0;
  for (const n of g.nodes) {
    const f = nodeFlops(n, inputOf, env);
    if (f === 0) continue;
    byOp[n.op] = (byOp[n.op] ?? 0) + f;
    total += f;
  }
  return { total, byOp };
}
