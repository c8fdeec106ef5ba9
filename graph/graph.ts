import type { SourceLoc } from './errors.js';
import type { Attrs, OpKind } from './ops.js';
import type { TensorType } from './types.js';

/**
 * One value of the graph: the op that makes it, its operands (ids of earlier nodes), its
 * attributes and type, the scope it was built in (`layers.3.attn.q`) and the position in the
 * user's model file that built it. Nodes are single-assignment and listed in topological order.
 */
export interface Node {
  readonly id: number;
  readonly op: OpKind;
  readonly inputs: readonly number[];
  readonly attrs: Attrs;
  readonly type: TensorType;
  readonly scope: string;
  readonly loc?: SourceLoc | undefined;
}

export interface GraphOutput {
  readonly name: string;
  readonly value: number;
}

/** Facts about the model the graph came from (e.g. the LLaMA config), for `kiln info`. */
export type GraphMeta = Readonly<Record<string, unknown>>;

export interface Graph {
  readonly name: string;
  readonly nodes: readonly Node[];
  readonly outputs: readonly GraphOutput[];
  readonly meta: GraphMeta;
}

/** Index nodes by id. */
export function nodeMap(g: Graph): Map<number, Node> {
  return new Map(g.nodes.map((n) => [n.id, n]));
}

export function nodesOf(g: Graph, op: OpKind): Node[] {
  return g.nodes.filter((n) => n.op === op);
}

/** `%12` — how values are named in every printer. */
export function valueName(id: number): string {
  return `%${id}`;
}
