import type { Graph } from '../../graph/graph.js';
import type { OpKind } from '../../graph/ops.js';
import { typeToString } from '../../graph/types.js';
import { type ParamStats, paramStats } from './params.js';
import { graphSymbols } from './symbols.js';

/** What a graph is at a glance: what `kiln compile` prints until backends exist. */
export interface GraphSummary {
  readonly name: string;
  readonly nodes: number;
  /** [op, count], most frequent first, then by name. */
  readonly ops: readonly (readonly [OpKind, number])[];
  readonly params: ParamStats;
  readonly inputs: readonly { name: string; type: string }[];
  readonly state: readonly { name: string; type: string }[];
  readonly outputs: readonly { name: string; type: string }[];
  readonly symbols: readonly string[];
}

export function graphSummary(g: Graph): GraphSummary {
  const counts = new Map<OpKind, number>();
  for (const n of g.nodes) counts.set(n.op, (counts.get(n.op) ?? 0) + 1);
  const ops = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const sources = (op: 'input' | 'state') =>
    g.nodes.filter((n) => n.op === op).map((n) => ({ name: String(n.attrs['name']), type: typeToString(n.type) }));
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  return {
    name: g.name,
    nodes: g.nodes.length,
    ops,
    params: paramStats(g),
    inputs: sources('input'),
    state: sources('state'),
    outputs: g.outputs.map((o) => ({ name: o.name, type: typeToString(byId.get(o.value)!.type) })),
    symbols: graphSymbols(g),
  };
}
