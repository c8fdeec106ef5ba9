/**
 * autodiff — reverse-mode gradients as a graph rewrite.
 *
 *   forward graph (kept as it is)          backward graph (appended)
 *   params ──▶ … ──▶ loss                 1 ──▶ … rules in reverse … ──▶ grad:<param>
 *
 * Input: a graph with a scalar f32 output (`loss` by default; shape [] or all 1s, such as the [1]
 * a full `mean` leaves) and the params to differentiate (by default every f32 param). Output: the
 * same graph, every forward output kept, plus one output `grad:<name>` per param, of the param's
 * shape. The walk covers only the nodes between the params and the loss (f32 values reachable
 * from a param from which the loss is reachable), in reverse node order: integer values and nodes
 * off that path get no gradient and no backward nodes. Several uses of a value add up; a param the
 * loss does not depend on gets zeros. Each node's gradient comes from one vector-Jacobian rule
 * (autodiff-rules.ts), written in core ops only, so every backend runs the backward graph with
 * no new semantics. A `fused` node is differentiated through its body: the body's values that
 * the rules read are recomputed in the backward graph (the fused node itself stays in the forward).
 *
 * New nodes carry the scope of the forward node they differentiate, under `grad.`
 * (`grad.layers.3.attn.q`), and its source position, so `kiln dump` of the backward graph reads
 * like the model. An op without a rule on the path is K1018, naming the op and the node's scope.
 */
import { dimEq, isStatic } from '../graph/dim.js';
import { InternalError, KilnError } from '../graph/errors.js';
import type { Graph, GraphOutput, Node } from '../graph/graph.js';
import { type Attrs, bodyArgIndex, type FusedBody, type OpKind } from '../graph/ops.js';
import { typeEq, typeToString } from '../graph/types.js';
import { RULES, type VjpContext, type VjpRule, zeros } from './autodiff-rules.js';
import type { Pass } from './pass.js';
import { type Origin, Rewriter } from './rewrite.js';

export interface AutodiffOptions {
  /** The output to differentiate (a scalar f32). Default `loss`. */
  readonly loss?: string;
  /** Names of the params to differentiate. Default: every f32 param, in graph order. */
  readonly params?: readonly string[];
  /** The rule table (tests replace it to check what a missing rule does). Default RULES. */
  readonly rules?: Readonly<Partial<Record<OpKind, VjpRule>>>;
}

/** The output holding a param's gradient. */
export function gradName(param: string): string {
  return `grad:${param}`;
}

/** The scope of the backward nodes made for a forward node of scope `s`. */
export function gradScope(s: string): string {
  return s === '' ? 'grad' : `grad.${s}`;
}

const PASS = 'autodiff';

function fail(msg: string, loc?: Node['loc']): never {
  throw new KilnError('K1018', `autodiff: ${msg}`, loc);
}

/**
 * The nodes a gradient flows through: f32 values reachable from `from`, from which one of `to`
 * is reachable. `nodes` is in topological order.
 */
function activeSet(nodes: readonly Node[], from: ReadonlySet<number>, to: readonly number[]): Set<number> {
  const down = new Set<number>();
  for (const n of nodes)
    if (n.type.dtype === 'f32' && (from.has(n.id) || n.inputs.some((i) => down.has(i)))) down.add(n.id);
  const up = new Set<number>(to);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (up.has(n.id)) for (const i of n.inputs) up.add(i);
  }
  return new Set([...down].filter((id) => up.has(id)));
}

/** Adds backward nodes to the rewriter; shared by the top-level walk and the walks through fused bodies. */
class Backward {
  constructor(
    private readonly r: Rewriter,
    private readonly rules: Readonly<Partial<Record<OpKind, VjpRule>>>,
    private readonly where: string,
  ) {}

  emitAt(origin: Origin, op: OpKind, inputs: readonly number[], attrs: Attrs = {}): number {
    return this.r.emit(op, inputs, attrs, origin);
  }

  /**
   * Reverse walk over `nodes` (topological): `seeds` are the gradients of the outputs (by node id),
   * `value` gives each node's forward value in the new graph. Returns the summed gradient of every
   * active node that got one.
   */
  walk(nodes: readonly Node[], active: ReadonlySet<number>, seeds: ReadonlyMap<number, number>, value: (id: number) => number): Map<number, number> {
    const parts = new Map<number, number[]>();
    for (const [id, g] of seeds) parts.set(id, [g]);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const total = new Map<number, number>();
    for (let k = nodes.length - 1; k >= 0; k--) {
      const n = nodes[k]!;
      const gs = parts.get(n.id);
      if (!active.has(n.id) || !gs) continue;
      const origin: Origin = { scope: gradScope(n.scope), loc: n.loc };
      const g = gs.reduce((a, b) => this.emitAt(origin, 'add', [a, b]));
      total.set(n.id, g);
      const need = n.inputs.map((i) => active.has(i));
      if (!need.some(Boolean)) continue;
      const rule = this.rules[n.op];
      if (!rule) fail(`no gradient rule for op '${n.op}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''}), which lies between the params and ${this.where}`, n.loc);
      const ctx: VjpContext = {
        node: n,
        g,
        x: (i) => value(n.inputs[i]!),
        y: () => value(n.id),
        need: (i) => need[i] === true,
        emit: (op, inputs, attrs = {}) => this.emitAt(origin, op, inputs, attrs),
        typeOf: (id) => this.r.typeOf(id),
        throughBody: (body, gOut) => this.throughBody(n, body, gOut, need, (i) => value(n.inputs[i]!)),
      };
      const grads = rule(ctx);
      n.inputs.forEach((i, j) => {
        if (!need[j]) return;
        const gi = grads[j];
        const want = byId.get(i)!.type;
        if (gi === undefined) throw new InternalError(`${PASS}: the ${n.op} rule gave no gradient for operand ${j} of %${n.id}`);
        if (!typeEq(this.r.typeOf(gi), want))
          throw new InternalError(`${PASS}: the ${n.op} rule gave operand ${j} of %${n.id} a gradient of type ${typeToString(this.r.typeOf(gi))}, want ${typeToString(want)}`);
        const list = parts.get(i);
        if (list) list.push(gi);
        else parts.set(i, [gi]);
      });
    }
    return total;
  }

  /** The operand gradients of fused node `n`: its body's values recomputed on demand, then walked in reverse. */
  private throughBody(n: Node, body: FusedBody, gOut: number, need: readonly boolean[], operand: (i: number) => number): (number | undefined)[] {
    const byId = new Map(body.nodes.map((b) => [b.id, b]));
    const memo = new Map<number, number>();
    const value = (id: number): number => {
      const known = memo.get(id);
      if (known !== undefined) return known;
      const b = byId.get(id);
      if (!b) throw new InternalError(`${PASS}: fused %${n.id}: body value %${id} does not exist`);
      const k = bodyArgIndex(b);
      const v = k !== undefined ? operand(k) : this.emitAt({ scope: gradScope(b.scope || n.scope), loc: b.loc ?? n.loc }, b.op, b.inputs.map(value), b.attrs);
      memo.set(id, v);
      return v;
    };
    const args = new Map<number, number>();
    for (const b of body.nodes) {
      const k = bodyArgIndex(b);
      if (k !== undefined && need[k]) args.set(k, b.id);
    }
    const out = body.outputs[0]!.value;
    const active = activeSet(body.nodes, new Set(args.values()), [out]);
    // Body nodes carry their members' scopes; one without any stands for the fused node.
    const nodes = body.nodes.map((b) => (b.scope === '' ? { ...b, scope: n.scope } : b));
    const total = this.walk(nodes, active, new Map([[out, gOut]]), value);
    return need.map((wanted, k) => {
      if (!wanted) return undefined;
      const arg = args.get(k);
      const g = arg === undefined ? undefined : total.get(arg);
      return g ?? zeros({ emit: (op, inputs, attrs = {}) => this.emitAt({ scope: gradScope(n.scope), loc: n.loc }, op, inputs, attrs) }, this.r.typeOf(operand(k)).shape);
    });
  }
}

/** The graph with `grad:<param>` outputs for the params named (default every f32 param). */
export function autodiff(g: Graph, opts: AutodiffOptions = {}): Graph {
  const lossName = opts.loss ?? 'loss';
  const lossOut = g.outputs.find((o) => o.name === lossName);
  if (!lossOut) fail(`the graph has no output '${lossName}' to differentiate (its outputs: ${g.outputs.map((o) => o.name).join(', ') || 'none'})`);
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const lossNode = byId.get(lossOut.value)!;
  const scalar = lossNode.type.shape.every((d) => isStatic(d) && dimEq(d, 1));
  if (lossNode.type.dtype !== 'f32' || !scalar) fail(`output '${lossName}' must be an f32 scalar (shape [] or all 1s), it is ${typeToString(lossNode.type)}`, lossNode.loc);

  const params = new Map<string, Node>();
  for (const n of g.nodes) if (n.op === 'param' && !params.has(String(n.attrs['name']))) params.set(String(n.attrs['name']), n);
  const names = opts.params ?? [...params.values()].filter((n) => n.type.dtype === 'f32').map((n) => String(n.attrs['name']));
  const targets = names.map((name) => {
    const p = params.get(name);
    if (!p) fail(`no param named '${name}' (params: ${[...params.keys()].join(', ') || 'none'})`);
    if (p.type.dtype !== 'f32') fail(`param '${name}' is ${typeToString(p.type)}: only f32 params have gradients`, p.loc);
    if (g.outputs.some((o) => o.name === gradName(name))) fail(`the graph already has an output '${gradName(name)}'`);
    return p;
  });
  if (new Set(names).size !== names.length) fail(`a param is named twice in [${names.join(', ')}]`);

  const r = new Rewriter(g, PASS);
  for (const n of g.nodes) r.copy(n);
  const back = new Backward(r, opts.rules ?? RULES, `output '${lossName}'`);
  const active = activeSet(g.nodes, new Set(targets.map((p) => p.id)), [lossNode.id]);
  let total = new Map<number, number>();
  if (active.has(lossNode.id)) {
    // d loss / d loss = 1
    const seed = back.emitAt({ scope: gradScope(lossNode.scope), loc: lossNode.loc }, 'const', [], { dtype: 'f32', shape: [...lossNode.type.shape], value: [1] });
    total = back.walk(g.nodes, active, new Map([[lossNode.id, seed]]), (id) => r.get(id));
  }

  const grads: GraphOutput[] = targets.map((p) => {
    const got = total.get(p.id);
    const value = got ?? zeros({ emit: (op, inputs, attrs = {}) => back.emitAt({ scope: gradScope(p.scope), loc: p.loc }, op, inputs, attrs) }, p.type.shape);
    return { name: gradName(String(p.attrs['name'])), value };
  });
  return r.finish({ outputs: [...g.outputs.map((o) => ({ name: o.name, value: r.get(o.value) })), ...grads] });
}

/** autodiff as a pass (its options fixed when the pass is made). */
export function autodiffPass(opts: AutodiffOptions = {}): Pass {
  return {
    name: PASS,
    reason: 'gradients of the loss with respect to the params, appended as core ops',
    run(g) {
      const graph = autodiff(g, opts);
      return { graph, stats: { grads: graph.outputs.length - g.outputs.length, added: graph.nodes.length - g.nodes.length } };
    },
  };
}
