/**
 * Small graph helpers for insert-kv-cache: symbol substitution in dims, the reshape target that
 * follows a changed key length, and pruning what a rewrite left unused.
 */
import { type Dim, dimAdd, dimEq, dimScale, productEq } from '../graph/dim.js';
import type { Graph, Node } from '../graph/graph.js';

/** `d` with the symbol `name` replaced by `by` (k·name + c → k·by + c). */
/** The symbol that counts a step's tokens: the sole dim of input `tokens` (`seq`, or whatever the model named it). */
export function tokensSymbol(g: Graph): string | undefined {
  const d = g.nodes.find((n) => n.op === 'input' && n.attrs['name'] === 'tokens')?.type.shape[0];
  const names = d === undefined || typeof d === 'number' ? [] : Object.keys(d.terms);
  return names.length === 1 ? names[0] : undefined;
}

export function substDim(d: Dim, name: string, by: Dim): Dim {
  if (typeof d === 'number') return d;
  const k = d.terms[name];
  if (k === undefined) return d;
  return dimAdd(dimAdd(d, dimScale({ terms: { [name]: 1 }, offset: 0 }, -k)), dimScale(by, k));
}

/** Whether a dim mentions the symbol `name`. */
export function mentions(d: Dim, name: string): boolean {
  return typeof d !== 'number' && d.terms[name] !== undefined;
}

/**
 * The new target of `reshape(x, oldOut)` once x's shape went from `oldIn` to `newIn`. Dims are
 * aligned from the end, where attention keeps the key length: the trailing dims the reshape
 * carried over unchanged follow their new sizes; the leading ones (heads, queries) stay.
 * `[Hkv, g·seq, seq] → [H, seq, seq]` becomes `[Hkv, g·seq, pos+seq] → [H, seq, pos+seq]`.
 * Undefined when the element counts no longer agree.
 */
export function alignReshape(oldIn: readonly Dim[], newIn: readonly Dim[], oldOut: readonly Dim[]): Dim[] | undefined {
  if (oldIn.length !== newIn.length) return undefined;
  const out = [...oldOut];
  for (let i = oldOut.length - 1, j = oldIn.length - 1; i >= 0 && j >= 0 && dimEq(oldIn[j]!, oldOut[i]!); i--, j--) out[i] = newIn[j]!;
  return productEq(newIn, out) ? out : undefined;
}

/** For each value, the ids of the nodes that read it (once per node, in node order). */
export function usersOf(nodes: readonly Node[]): Map<number, number[]> {
  const users = new Map<number, number[]>(nodes.map((n) => [n.id, []]));
  for (const n of nodes) for (const i of new Set(n.inputs)) users.get(i)?.push(n.id);
  return users;
}

/** The graph without the nodes no output depends on, renumbered 0… in the same order. */
export function pruneAndRenumber(g: Graph): Graph {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const live = new Set<number>();
  const stack = g.outputs.map((o) => o.value);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...byId.get(id)!.inputs);
  }
  const ids = new Map<number, number>();
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    ids.set(n.id, nodes.length);
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => ids.get(i)!) });
  }
  return { ...g, nodes, outputs: g.outputs.map((o) => ({ name: o.name, value: ids.get(o.value)! })) };
}
