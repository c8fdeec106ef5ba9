/**
 * The pass manager: runs a list of passes in order, timing each, counting nodes before and after,
 * collecting each pass's stats, validating the graph after every pass (a pass that breaks an
 * invariant is an InternalError naming the pass — kiln's bug, not the user's) and handing the
 * graph after chosen passes to a dump callback (`kiln compile --dump-after`).
 */
import { InternalError, KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { validate } from '../graph/validate.js';
import type { Pass, PassOptions, PassStats } from './pass.js';
import { PIPELINE } from './pipeline.js';

export interface PassReport {
  readonly name: string;
  readonly ms: number;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly stats: PassStats;
}

export interface RunOptions extends PassOptions {
  /** Passes after which to dump the graph: every one, or those named. */
  readonly dumpAfter?: 'all' | readonly string[];
  /** Called with the 1-based position of the pass in the run, its name and the graph it produced. */
  readonly onDump?: (index: number, pass: string, g: Graph) => void;
}

export interface PipelineResult {
  readonly graph: Graph;
  readonly reports: readonly PassReport[];
}

export function runPipeline(g: Graph, passes: readonly Pass[], opts: RunOptions = {}): PipelineResult {
  const { dumpAfter, onDump, ...passOpts } = opts;
  if (Array.isArray(dumpAfter)) {
    const known = passes.map((p) => p.name);
    for (const name of dumpAfter)
      if (!known.includes(name))
        throw new KilnError('K1016', `--dump-after: '${name}' is not a pass of this pipeline; its passes are: ${[...new Set(known)].join(', ')}`);
  }
  // A graph that is invalid before any pass ran is the caller's (K1015), not a pass's.
  validate(g);
  const reports: PassReport[] = [];
  let graph = g;
  passes.forEach((pass, k) => {
    const t0 = performance.now();
    const { graph: out, stats } = pass.run(graph, passOpts);
    const ms = performance.now() - t0;
    try {
      validate(out);
    } catch (e) {
      if (e instanceof KilnError) throw new InternalError(`pass ${pass.name} produced an invalid graph: ${e.message}`);
      throw e;
    }
    reports.push({ name: pass.name, ms, nodesBefore: graph.nodes.length, nodesAfter: out.nodes.length, stats });
    graph = out;
    if (onDump && (dumpAfter === 'all' || dumpAfter?.includes(pass.name))) onDump(k + 1, pass.name, graph);
  });
  return { graph, reports };
}

/**
 * The passes named by `--passes` (names may also come comma-separated), in the order given; each
 * name is looked up in PIPELINE (or `from`). An unknown name is K1016, listing the known ones.
 */
export function selectPasses(names: readonly string[], from: readonly Pass[] = PIPELINE): Pass[] {
  const byName = new Map(from.map((p) => [p.name, p]));
  const wanted = names.flatMap((n) => n.split(',')).map((n) => n.trim()).filter((n) => n !== '');
  return wanted.map((name) => {
    const pass = byName.get(name);
    if (!pass) throw new KilnError('K1016', `unknown pass '${name}'; known passes: ${[...byName.keys()].join(', ')}`);
    return pass;
  });
}

/**
 * The table `kiln compile` prints:
 *
 *   pass              ms  nodes      stats
 *   constant-fold   0.31  412 → 398  folded: 14
 *   fuse-swiglu    12.50  398 → 350  fused: 16
 *   total          12.81  412 → 350
 */
export function formatReport(reports: readonly PassReport[]): string {
  const rows = reports.map((r) => [
    r.name,
    r.ms.toFixed(2),
    `${r.nodesBefore} → ${r.nodesAfter}`,
    Object.entries(r.stats)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', '),
  ]);
  const total = reports.reduce((s, r) => s + r.ms, 0);
  const first = reports[0];
  const last = reports.at(-1);
  rows.push(['total', total.toFixed(2), first && last ? `${first.nodesBefore} → ${last.nodesAfter}` : '', '']);
  const head = ['pass', 'ms', 'nodes', 'stats'];
  const all = [head, ...rows];
  const width = head.map((_, c) => Math.max(...all.map((row) => row[c]!.length)));
  // Names left-aligned, times right-aligned so their decimal points line up.
  const line = (row: readonly string[]) =>
    row
      .map((cell, c) => (c === 1 ? cell.padStart(width[c]!) : cell.padEnd(width[c]!)))
      .join('  ')
      .trimEnd();
  return `${all.map(line).join('\n')}\n`;
}
