import type { Graph, Node } from '../graph.js';
import { type FusedBody, OPS } from '../ops.js';
import { typeToString } from '../types.js';
import { foldLine, planFold } from './fold.js';
import { formatLoc, formatOp, graphSymbols } from './format.js';

/**
 * The text dump: a header, one line per node, then the outputs, in aligned columns
 *
 *   graph tiny (symbols: pos, seq)
 *   %12 = matmul %10, %11 {transB}   f32[seq, 4096]   layers.0.attn.q   examples/llama.ts(57,13)
 *   output logits = %40              f32[seq, 32000]
 *
 * With `fold`, blocks identical to the first of their family (see fold.ts) become one line. A
 * fused op's body is printed under it, indented and marked `│`, with its own value numbers.
 * Stable for a given graph, so two dumps diff cleanly.
 */
export interface TextOptions {
  readonly fold?: boolean;
}

const GAP = '   ';
/** Wider cells overflow instead of pushing every other line to the right. */
const MAX_WIDTH = [64, 28, 36];

type Row = readonly string[] | string;

/** A scope as one cell of its line: quoted when it holds spaces or control characters (a line per node). */
function shownScope(scope: string): string {
  return /[\s\p{Cc}]/u.test(scope) ? JSON.stringify(scope) : scope;
}

export function printText(g: Graph, opts: TextOptions = {}): string {
  const syms = graphSymbols(g);
  const header = `graph ${g.name} (${syms.length ? `symbols: ${syms.join(', ')}` : 'no symbols'})`;
  const plan = opts.fold ? planFold(g) : undefined;
  const rows: Row[] = [];
  const shownRuns = new Set<object>();
  for (const n of g.nodes) {
    const run = plan?.hidden.get(n.id);
    if (run) {
      if (!shownRuns.has(run)) rows.push(foldLine(run));
      shownRuns.add(run);
      continue;
    }
    rows.push(...nodeRows(n, ''));
  }
  const types = new Map(g.nodes.map((n) => [n.id, n.type]));
  for (const o of g.outputs) {
    const t = types.get(o.value);
    rows.push([`output ${o.name} = %${o.value}`, t ? typeToString(t) : '?', '', '']);
  }
  return [header, ...align(rows), ...planLines(g)].join('\n') + '\n';
}

/** The memory plan (meta.memoryPlan, after plan-memory) under the nodes: where each value lives. */
function planLines(g: Graph): string[] {
  const plan = g.meta['memoryPlan'] as
    | { arenaBytes: number; totalBytes: number; bounds: Record<string, number>; buffers: { value: number; offset: number; bytes: number; start: number; end: number }[] }
    | undefined;
  if (!plan || !Array.isArray(plan.buffers)) return [];
  const n = (x: number) => String(x).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const bounds = Object.entries(plan.bounds ?? {}).map(([k, v]) => `${k} ≤ ${v}`).join(', ');
  return [
    '',
    `memory plan: one arena of ${n(plan.arenaBytes)} bytes for ${n(plan.totalBytes)} bytes of values${bounds ? `, sized at ${bounds}` : ''} (schedule index: node order)`,
    ...align(plan.buffers.map((b) => [`  %${b.value}`, `at ${n(b.offset)}`, `${n(b.bytes)} bytes`, `live ${b.start}–${b.end}`])),
  ];
}

const BODY_INDENT = '    │ ';

function nodeRows(n: Node, indent: string): string[][] {
  const rows = [[indent + formatOp(n, false), typeToString(n.type), shownScope(n.scope), formatLoc(n.loc)]];
  for (const [k, kind] of Object.entries(OPS[n.op].attrs)) {
    const body = n.attrs[k] as FusedBody | undefined;
    if (kind !== 'graph' || body === undefined) continue;
    const inner = indent + BODY_INDENT;
    for (const m of body.nodes) rows.push(...nodeRows(m, inner));
    for (const o of body.outputs) rows.push([`${inner}return %${o.value}`, '', '', '']);
  }
  return rows;
}

function align(rows: readonly Row[]): string[] {
  const widths = MAX_WIDTH.map((max, c) =>
    Math.min(max, Math.max(0, ...rows.map((r) => (typeof r === 'string' ? 0 : r[c]!.length)))),
  );
  return rows.map((r) => {
    if (typeof r === 'string') return r;
    return r
      .map((cell, c) => (c < widths.length ? cell.padEnd(widths[c]!) : cell))
      .join(GAP)
      .trimEnd();
  });
}
