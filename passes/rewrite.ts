/**
 * A small toolkit for passes that rewrite graphs.
 *
 * - `Rewriter` copies a graph node by node into a new one, keeping a map from old ids to new ids.
 *   A pass copies what it keeps, skips what it drops, emits new nodes, and redirects an old value
 *   to a new one (`set`). Every emitted node's type is re-inferred with `OPS[op].infer`, so a pass
 *   that changes one type (a shape, a dtype) gets the types below it recomputed. New ids are
 *   dense (id = position), which keeps dumps compact and lets backends index arrays by id.
 * - `useInfo` answers "who reads this value" (distinct user nodes, and whether it is an output).
 * - `dropDead` removes nodes that no output reaches.
 * - `makeBody` turns a set of nodes into the body of a `fused` node: the exact decomposition that
 *   gives the fused op its meaning, with the set's outside operands as inputs arg0, arg1, …
 */
import { InternalError, ShapeError } from '../graph/errors.js';
import type { Graph, GraphMeta, GraphOutput, Node } from '../graph/graph.js';
import { type Attrs, type FusedBody, OPS, type OpKind } from '../graph/ops.js';
import type { TensorType } from '../graph/types.js';
import type { Pass } from './pass.js';

/** Where a new node says it came from: the scope and source position of the node it replaces. */
export interface Origin {
  readonly scope: string;
  readonly loc?: Node['loc'];
}

/** Infer a node's type; a shape rule failing inside a pass is the pass's bug, not the user's. */
export function inferType(op: OpKind, inputs: readonly TensorType[], attrs: Attrs, what: string): TensorType {
  try {
    return OPS[op].infer(inputs, attrs);
  } catch (e) {
    if (e instanceof ShapeError) throw new InternalError(`${what}: ${op} no longer type-checks: ${e.message}`);
    throw e;
  }
}

function makeNode(id: number, op: OpKind, inputs: readonly number[], attrs: Attrs, type: TensorType, origin: Origin): Node {
  // Leave `loc` out rather than undefined, as the builder's graphs do when there is none.
  const n: Node = { id, op, inputs: [...inputs], attrs, type, scope: origin.scope };
  return origin.loc === undefined ? n : { ...n, loc: origin.loc };
}

export class Rewriter {
  private readonly nodes: Node[] = [];
  private readonly remap = new Map<number, number>();

  /** `pass` names the pass in internal errors. */
  constructor(
    readonly src: Graph,
    private readonly pass: string,
  ) {}

  /** The new id standing for old value `id`. */
  get(id: number): number {
    const v = this.remap.get(id);
    if (v === undefined) throw new InternalError(`${this.pass}: value %${id} of graph ${this.src.name} was used but never copied or replaced`);
    return v;
  }

  has(id: number): boolean {
    return this.remap.has(id);
  }

  /** From now on, old value `id` is new value `to`. */
  set(id: number, to: number): void {
    this.remap.set(id, to);
  }

  /** The type of new value `id`. */
  typeOf(id: number): TensorType {
    const n = this.nodes[id];
    if (!n) throw new InternalError(`${this.pass}: no new value %${id}`);
    return n.type;
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new InternalError(`${this.pass}: no new value %${id}`);
    return n;
  }

  /** Add a node whose operands are new ids; returns its id. */
  emit(op: OpKind, inputs: readonly number[], attrs: Attrs, origin: Origin): number {
    const id = this.nodes.length;
    const type = inferType(op, inputs.map((i) => this.typeOf(i)), attrs, `${this.pass} (new %${id}${origin.scope ? `, ${origin.scope}` : ''})`);
    this.nodes.push(makeNode(id, op, inputs, attrs, type, origin));
    return id;
  }

  /** Copy old node `n` with its operands remapped, and map `n` to the copy. */
  copy(n: Node, attrs: Attrs = n.attrs): number {
    const id = this.emit(n.op, n.inputs.map((i) => this.get(i)), attrs, n);
    this.set(n.id, id);
    return id;
  }

  /** The new graph: the source's outputs remapped (or `outputs`, already in new ids). */
  finish(opts: { outputs?: readonly GraphOutput[]; meta?: GraphMeta } = {}): Graph {
    const outputs = opts.outputs ?? this.src.outputs.map((o) => ({ name: o.name, value: this.get(o.value) }));
    return { name: this.src.name, nodes: [...this.nodes], outputs, meta: opts.meta ?? this.src.meta };
  }

  get size(): number {
    return this.nodes.length;
  }
}

/** Copy every node of `g` (renumbering densely): the identity rewrite. */
export function copyGraph(g: Graph, pass = 'copy'): Graph {
  const r = new Rewriter(g, pass);
  for (const n of g.nodes) r.copy(n);
  return r.finish();
}

// ---------------------------------------------------------------------------------------------
// uses

export interface UseInfo {
  /** Distinct nodes reading each value (a node reading it twice counts once). */
  readonly users: ReadonlyMap<number, readonly number[]>;
  /** Values that are graph outputs. */
  readonly outputs: ReadonlySet<number>;
}

export function useInfo(g: Graph): UseInfo {
  const users = new Map<number, number[]>();
  for (const n of g.nodes)
    for (const i of new Set(n.inputs)) {
      const us = users.get(i);
      if (us) us.push(n.id);
      else users.set(i, [n.id]);
    }
  return { users, outputs: new Set(g.outputs.map((o) => o.value)) };
}

/** Whether `id` is read by exactly the node `by` and is not a graph output: safe to absorb into `by`. */
export function onlyUsedBy(u: UseInfo, id: number, by: number): boolean {
  const us = u.users.get(id) ?? [];
  return !u.outputs.has(id) && us.length === 1 && us[0] === by;
}

// ---------------------------------------------------------------------------------------------
// dead code

/**
 * Keep the nodes an output reaches, plus those `keep` names as roots; drop the rest. Returns the
 * new graph and how many nodes went.
 */
export function dropDead(g: Graph, pass: string, keep: (n: Node) => boolean = () => false): { graph: Graph; removed: number } {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const live = new Set<number>();
  const stack = [...g.outputs.map((o) => o.value), ...g.nodes.filter(keep).map((n) => n.id)];
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    for (const i of byId.get(id)?.inputs ?? []) stack.push(i);
  }
  const r = new Rewriter(g, pass);
  for (const n of g.nodes) if (live.has(n.id)) r.copy(n);
  return { graph: r.finish(), removed: g.nodes.length - live.size };
}

// ---------------------------------------------------------------------------------------------
// fused bodies

export interface BodyParts {
  readonly body: FusedBody;
  /** Old ids of the values the body reads from outside, in argument order. */
  readonly operands: readonly number[];
}

/**
 * The body of a fused node computing `root` from `members` (old nodes, any order; `root` among
 * them). Operands of members that are not members become inputs `arg0`, `arg1`, …: in the order
 * given by `operands` when it is passed (it must list exactly those values, each once), otherwise
 * in order of first use. Members are copied in their original order with their scopes and
 * positions; `typeOf` gives the current type of an outside value.
 */
export function makeBody(
  name: string,
  members: readonly Node[],
  root: number,
  typeOf: (oldId: number) => TensorType,
  operands?: readonly number[],
): BodyParts {
  const sorted = [...members].sort((a, b) => a.id - b.id);
  const inside = new Set(sorted.map((n) => n.id));
  if (!inside.has(root)) throw new InternalError(`makeBody ${name}: root %${root} is not a member`);
  const outside: number[] = [];
  for (const n of sorted) for (const i of n.inputs) if (!inside.has(i) && !outside.includes(i)) outside.push(i);
  const args = operands ?? outside;
  if (args.length !== outside.length || new Set(args).size !== args.length || !outside.every((i) => args.includes(i)))
    throw new InternalError(`makeBody ${name}: operands [${args.join(', ')}] are not the body's outside values [${outside.join(', ')}]`);

  const nodes: Node[] = [];
  const local = new Map<number, number>();
  args.forEach((old, k) => {
    const type = typeOf(old);
    local.set(old, nodes.length);
    nodes.push(makeNode(nodes.length, 'input', [], { name: `arg${k}`, dtype: type.dtype, shape: [...type.shape] }, type, { scope: '' }));
  });
  for (const n of sorted) {
    const inputs = n.inputs.map((i) => local.get(i)!);
    const type = inferType(n.op, inputs.map((i) => nodes[i]!.type), n.attrs, `makeBody ${name} (%${n.id})`);
    local.set(n.id, nodes.length);
    nodes.push(makeNode(nodes.length, n.op, inputs, n.attrs, type, n));
  }
  return { body: { name, nodes, outputs: [{ name: 'out', value: local.get(root)! }], meta: {} }, operands: args };
}

/** Emit `fused(pattern)` with `parts` into `r` at `origin` (the root it replaces); returns its new id. */
export function emitFused(r: Rewriter, pattern: string, parts: BodyParts, origin: Origin): number {
  return r.emit('fused', parts.operands.map((i) => r.get(i)), { pattern, body: parts.body }, origin);
}

/** How many `fused` nodes of `pattern` a graph holds (top level). */
export function countFused(g: Graph, pattern: string): number {
  return g.nodes.filter((n) => n.op === 'fused' && n.attrs['pattern'] === pattern).length;
}

/** A subgraph a fusion matched at its root: the nodes it absorbs and its operands in argument order. */
export interface FusionMatch {
  readonly members: readonly Node[];
  readonly operands: readonly number[];
}

/**
 * The driver every pattern fusion shares: match each node as a root (`match` sees the original
 * graph and its uses), then rewrite — matched roots become one `fused(pattern)` node whose body is
 * the members, absorbed members disappear, everything else is copied.
 */
export function fuseMatches(
  g: Graph,
  pass: string,
  pattern: string,
  match: (root: Node, byId: ReadonlyMap<number, Node>, uses: UseInfo) => FusionMatch | undefined,
): { graph: Graph; fused: number } {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const uses = useInfo(g);
  const matches = new Map<number, FusionMatch>();
  const absorbed = new Set<number>();
  for (const n of g.nodes) {
    const m = match(n, byId, uses);
    if (!m) continue;
    matches.set(n.id, m);
    for (const k of m.members) if (k.id !== n.id) absorbed.add(k.id);
  }
  const r = new Rewriter(g, pass);
  for (const n of g.nodes) {
    if (absorbed.has(n.id)) continue;
    const m = matches.get(n.id);
    if (!m) {
      r.copy(n);
      continue;
    }
    const parts = makeBody(pattern, m.members, n.id, (i) => r.typeOf(r.get(i)), m.operands);
    r.set(n.id, emitFused(r, pattern, parts, n));
  }
  return { graph: r.finish(), fused: matches.size };
}

/** A pass that is one pattern fusion (fuseMatches), reporting how many it fused. */
export function fusionPass(name: string, reason: string, pattern: string, match: Parameters<typeof fuseMatches>[3]): Pass {
  return {
    name,
    reason,
    run(g) {
      const { graph, fused } = fuseMatches(g, name, pattern, match);
      return { graph, stats: { fused } };
    },
  };
}
