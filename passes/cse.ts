/**
 * cse — common-subexpression elimination.
 *
 * Two nodes with the same op, the same operands (after earlier merges) and equal attributes
 * compute the same value; the later one is replaced by the earlier, whose scope and source
 * position stay. Consts merge when their dtype, shape and values are equal (NaN equals NaN, −0 is
 * not +0). Sources (input, param, state) carry their name among their attributes, so two sources
 * with different names never merge (and the validator forbids two with one name).
 *
 * The replaced nodes are not copied: cse leaves no dead code of its own, but it does not remove
 * what was dead before (that is dce's job). Runs after constant-fold (folded consts become equal)
 * and before dce.
 */
import { dimToString } from '../graph/dim.js';
import type { AttrValue, FusedBody } from '../graph/ops.js';
import { typeToString } from '../graph/types.js';
import type { Pass } from './pass.js';
import { Rewriter } from './rewrite.js';

/** A string that is equal for two attribute values exactly when they mean the same. */
export function attrKey(v: AttrValue | undefined): string {
  if (v === undefined) return 'u';
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (Array.isArray(v)) return `[${(v as readonly AttrValue[]).map(attrKey).join(',')}]`;
  if ('terms' in v) return `d(${dimToString(v)})`;
  return bodyKey(v as FusedBody);
}

/** Bodies compare by structure: ops, operands, attributes and types; scopes and positions do not matter. */
function bodyKey(b: FusedBody): string {
  const nodes = b.nodes.map((n) => `${n.id}=${nodeKey(n.op, n.inputs, n.attrs)}:${typeToString(n.type)}`);
  return `g(${nodes.join(';')}|${b.outputs.map((o) => o.value).join(',')})`;
}

function nodeKey(op: string, inputs: readonly number[], attrs: Readonly<Record<string, AttrValue>>): string {
  const as = Object.keys(attrs)
    .sort()
    .map((k) => `${k}:${attrKey(attrs[k])}`);
  return `${op}(${inputs.join(',')}){${as.join(',')}}`;
}

export const cse: Pass = {
  name: 'cse',
  reason: 'compute each value once: merge nodes with the same op, operands and attributes',
  run(g) {
    const r = new Rewriter(g, 'cse');
    const seen = new Map<string, number>();
    let merged = 0;
    for (const n of g.nodes) {
      const key = nodeKey(n.op, n.inputs.map((i) => r.get(i)), n.attrs);
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        r.set(n.id, earlier);
        merged++;
      } else seen.set(key, r.copy(n));
    }
    return { graph: r.finish(), stats: { merged } };
  },
};
