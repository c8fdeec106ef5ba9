import type { Graph, Node } from '../graph.js';
import { OPS, SOURCE_OPS } from '../ops.js';
import { typeToString } from '../types.js';
import { type FoldRun, foldLine, planFold } from './fold.js';
import { formatAttrs } from './format.js';

/**
 * Graphviz DOT. Each node shows its op (with compact attributes) and type; sources and outputs
 * have their own shapes and colours; each scope is a cluster nested in its parent's
 * (`layers` ⊃ `layers.0` ⊃ `layers.0.attn`). Operands of ops with several are numbered on the
 * edge, so `sub %a, %b` can be told from `sub %b, %a`. With `fold`, only the first of identical
 * blocks is drawn, plus one note standing for the rest; edges to and from hidden nodes go to it.
 */
export interface DotOptions {
  readonly fold?: boolean;
}

/** A DOT double-quoted string: only `"` and `\` need escaping; line breaks become `\n` (centred). */
export function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

const STYLE: Readonly<Record<string, string>> = {
  input: 'shape=invhouse, fillcolor="#d5f0d5"',
  param: 'shape=box, style="filled", fillcolor="#fde8c8"',
  state: 'shape=cylinder, fillcolor="#e3d9f5"',
  const: 'shape=box, style="filled,dashed", fillcolor="#eeeeee"',
  iota: 'shape=box, style="filled,dashed", fillcolor="#eeeeee"',
};
const OUTPUT_STYLE = 'shape=house, fillcolor="#f8d0d0"';
const NOTE_STYLE = 'shape=note, fillcolor="#fff8c4"';

function nodeLabel(n: Node): string {
  const { lead, attrs } = formatAttrs(n);
  const head = [`%${n.id} ${n.op}`, lead, attrs].filter((s) => s !== '').join(' ');
  return `${head}\n${typeToString(n.type)}`;
}

interface Cluster {
  readonly scope: string;
  readonly children: Map<string, Cluster>;
  readonly lines: string[];
}

function newCluster(scope: string): Cluster {
  return { scope, children: new Map(), lines: [] };
}

function clusterFor(root: Cluster, scope: string): Cluster {
  let c = root;
  if (scope === '') return c;
  const segs = scope.split('.');
  for (let i = 1; i <= segs.length; i++) {
    const path = segs.slice(0, i).join('.');
    let next = c.children.get(path);
    if (!next) c.children.set(path, (next = newCluster(path)));
    c = next;
  }
  return c;
}

/** Nodes without inputs (ranked at the top by dot): not a param's anchor. */
const SOURCES: ReadonlySet<string> = new Set(SOURCE_OPS);

export function printDot(g: Graph, opts: DotOptions = {}): string {
  const plan = opts.fold ? planFold(g) : undefined;
  const root = newCluster('');
  const noteId = (r: FoldRun) => `fold${plan!.runs.indexOf(r)}`;
  const edges = new Set<string>();
  const endpoint = (id: number) => {
    const run = plan?.hidden.get(id);
    return run ? noteId(run) : `n${id}`;
  };
  for (const r of plan?.runs ?? []) {
    clusterFor(root, r.family).lines.push(`${noteId(r)} [label=${dotString(foldLine(r).replace(/^… /, '').replace(': ', ':\n'))}, ${NOTE_STYLE}];`);
  }
  for (const n of g.nodes) {
    const hidden = plan?.hidden.has(n.id) ?? false;
    if (!hidden) {
      const style = STYLE[n.op] ?? '';
      clusterFor(root, n.scope).lines.push(`n${n.id} [label=${dotString(nodeLabel(n))}${style ? `, ${style}` : ''}];`);
    }
    const several = n.inputs.length > 1 || OPS[n.op].arity === 'variadic';
    n.inputs.forEach((src, k) => {
      const from = endpoint(src);
      const to = endpoint(n.id);
      // Inside a folded run the edges are hidden; across its border they meet the note once.
      if (from === to && hidden) return;
      const label = several && !hidden && !plan?.hidden.has(src) ? ` [label=${dotString(String(k))}]` : '';
      edges.add(`${from} -> ${to}${label};`);
    });
  }
  const lines = [
    `digraph ${dotString(g.name)} {`,
    '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, labeljust=l, style="rounded", color="#999999"];',
    '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=8, color="#555555", arrowsize=0.6];',
  ];
  let clusterCount = 0;
  const emit = (c: Cluster, indent: string) => {
    for (const l of c.lines) lines.push(`${indent}${l}`);
    for (const child of c.children.values()) {
      lines.push(`${indent}subgraph cluster_${clusterCount++} {`);
      lines.push(`${indent}  label=${dotString(child.scope)};`);
      emit(child, `${indent}  `);
      lines.push(`${indent}}`);
    }
  };
  emit(root, '  ');
  // A param has no inputs, so dot ranks it at the top: every layer's cluster would then start at
  // the first rank, and the clusters, which may not overlap, would sit side by side in a
  // staircase. An invisible edge from the data its first user also reads ranks it there instead.
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const firstUser = new Map<number, Node>();
  for (const n of g.nodes) for (const src of n.inputs) if (!firstUser.has(src)) firstUser.set(src, n);
  for (const p of g.nodes) {
    if (p.op !== 'param' || plan?.hidden.has(p.id)) continue;
    const data = firstUser.get(p.id)?.inputs.find((v) => !SOURCES.has(byId.get(v)!.op));
    if (data !== undefined && endpoint(data) !== `n${p.id}`) edges.add(`${endpoint(data)} -> n${p.id} [style=invis];`);
  }
  g.outputs.forEach((o, k) => {
    lines.push(`  out${k} [label=${dotString(`output ${o.name}`)}, ${OUTPUT_STYLE}];`);
    edges.add(`${endpoint(o.value)} -> out${k};`);
  });
  for (const e of edges) lines.push(`  ${e}`);
  lines.push('}', '');
  return lines.join('\n');
}
