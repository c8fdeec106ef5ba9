import { KilnError, ShapeError, type SourceLoc } from './errors.js';
import type { Graph, GraphMeta, Node } from './graph.js';
import { type Attrs, OPS, type OpKind, attrMatches, attrProblem } from './ops.js';
import { modelSite } from './source.js';
import type { TensorType } from './types.js';
import { validate } from './validate.js';

/**
 * Builds a graph one node at a time. Each node gets the current scope (`layers.3.attn`) and the
 * position in the user's model file that asked for it; a shape rule that fails becomes a
 * `KilnError` at that position, naming the op and the dims.
 */
export class GraphBuilder {
  readonly name: string;
  private readonly nodes: Node[] = [];
  private readonly outs: { name: string; value: number }[] = [];
  private readonly scopes: string[] = [];
  private meta: Record<string, unknown> = {};

  constructor(name: string) {
    this.name = name;
  }

  get scope(): string {
    return this.scopes.join('.');
  }

  /** Run `fn` with `name` pushed on the scope path (`layers` → `layers.3` → `layers.3.attn`). */
  within<T>(name: string | number, fn: () => T): T {
    this.scopes.push(String(name));
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  typeOf(id: number): TensorType {
    const n = this.nodes[id];
    if (!n) throw new Error(`no value %${id} in graph ${this.name}`);
    return n.type;
  }

  node(id: number): Node {
    const n = this.nodes[id];
    if (!n) throw new Error(`no value %${id} in graph ${this.name}`);
    return n;
  }

  /** Add a node; `loc` overrides the captured call site. Returns the new value's id. */
  add(op: OpKind, inputs: readonly number[], attrs: Attrs = {}, loc: SourceLoc | undefined = modelSite()): number {
    const def = OPS[op];
    const types = inputs.map((i) => this.typeOf(i));
    // Attributes first: shape inference would trip over a 12.8 or a −4 in a shape.
    for (const [k, kind] of Object.entries(def.attrs)) {
      const v = attrs[k];
      if (v !== undefined && !attrMatches(kind, v)) throw new KilnError('K1007', `${op} attribute '${k}' ${attrProblem(kind, v)}`, loc);
    }
    let type: TensorType;
    try {
      type = def.infer(types, attrs);
    } catch (e) {
      if (e instanceof ShapeError) throw new KilnError(e.code, e.message, loc);
      throw e;
    }
    const id = this.nodes.length;
    this.nodes.push({ id, op, inputs: [...inputs], attrs, type, scope: this.scope, loc });
    return id;
  }

  output(name: string, value: number, loc: SourceLoc | undefined = modelSite()): void {
    if (this.outs.some((o) => o.name === name)) throw new KilnError('K1015', `output '${name}' is declared twice`, loc);
    this.outs.push({ name, value });
  }

  setMeta(key: string, value: unknown): void {
    this.meta = { ...this.meta, [key]: value };
  }

  build(): Graph {
    const g: Graph = { name: this.name, nodes: [...this.nodes], outputs: [...this.outs], meta: this.meta as GraphMeta };
    validate(g);
    return g;
  }
}
