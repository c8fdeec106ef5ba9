/**
 * constant-fold — evaluate at compile time what depends on nothing but constants.
 *
 * A node whose operands are all `const` (an `iota` has none) is run through the reference
 * interpreter and replaced by a `const` holding its value, when
 *   - its result has a static shape of at most MAX_FOLD_ELEMENTS elements (folding must not bloat
 *     the graph with large tables),
 *   - none of its attributes mentions a dim symbol (a slice at `pos` depends on the step), and
 *   - it is not a source or a `fused` op (fusions run later; their bodies are theirs).
 * A node whose evaluation fails (a gather index out of range) is left alone, so the error still
 * happens at run time where the interpreter would raise it. A value whose elements are all the
 * same becomes a one-element (splat) const.
 *
 * The folded node's operands are left behind for dce. Sits first in the pipeline, so that cse
 * sees the folded consts and the fusions see fewer, simpler nodes.
 */
import { isStatic } from '../graph/dim.js';
import type { Graph, Node } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import type { AttrValue } from '../graph/ops.js';
import { staticNumel } from '../graph/types.js';
import type { Pass } from './pass.js';
import { Rewriter } from './rewrite.js';

export const MAX_FOLD_ELEMENTS = 1024;

const NEVER = new Set(['input', 'param', 'state', 'const', 'fused']);

function hasSymbol(v: AttrValue): boolean {
  if (Array.isArray(v)) return (v as readonly AttrValue[]).some(hasSymbol);
  return typeof v === 'object' && v !== null && 'terms' in v && !isStatic(v);
}

function foldable(n: Node, isConst: (id: number) => boolean): boolean {
  if (NEVER.has(n.op) || !n.inputs.every(isConst)) return false;
  const size = staticNumel(n.type.shape);
  return size !== undefined && size <= MAX_FOLD_ELEMENTS && !Object.values(n.attrs).some(hasSymbol);
}

/** The node's value from its const operands, or undefined when evaluating it fails. */
function evaluate(n: Node, operands: readonly Node[]): number[] | undefined {
  const ids = new Map(operands.map((o, k) => [o.id, k]));
  const nodes: Node[] = operands.map((o, k) => ({ ...o, id: k }));
  nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => ids.get(i)!) });
  const g: Graph = { name: 'fold', nodes, outputs: [{ name: 'v', value: nodes.length - 1 }], meta: {} };
  try {
    return [...interpret(g, {}).v!.data];
  } catch {
    return undefined;
  }
}

export const constantFold: Pass = {
  name: 'constant-fold',
  reason: 'compute values that depend only on constants once, at compile time',
  run(g) {
    const r = new Rewriter(g, 'constant-fold');
    // old id → the const node (old or folded) now standing for it
    const consts = new Map<number, Node>();
    let folded = 0;
    for (const n of g.nodes) {
      if (n.op === 'const') consts.set(n.id, n);
      if (!foldable(n, (i) => consts.has(i))) {
        r.copy(n);
        continue;
      }
      const value = evaluate(n, [...new Set(n.inputs)].map((i) => consts.get(i)!));
      if (value === undefined) {
        r.copy(n);
        continue;
      }
      const splat = value.length > 0 && value.every((v) => Object.is(v, value[0]));
      const attrs = { dtype: n.type.dtype, shape: [...n.type.shape], value: splat ? [value[0]!] : value };
      r.set(n.id, r.emit('const', [], attrs, n));
      consts.set(n.id, { ...n, op: 'const', inputs: [], attrs });
      folded++;
    }
    return { graph: r.finish(), stats: { folded } };
  },
};
