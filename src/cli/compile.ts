import { type GraphSummary, graphSummary } from '../analysis/summary.js';
import { commas, humanBytes, table } from './format.js';
import { writeStdout } from './io.js';
import { loadGraph } from './load.js';

export interface CompileOptions {
  readonly backend: string;
  readonly typecheck?: boolean;
}

/**
 * `kiln compile`: today it builds and validates the graph and prints its summary. No backend
 * generates code yet, and the command says so instead of pretending.
 */
export async function compile(spec: string, opts: CompileOptions): Promise<void> {
  const g = await loadGraph(spec, { typecheck: opts.typecheck !== false });
  await writeStdout(formatSummary(graphSummary(g)));
  process.stderr.write(`kiln: graph is valid; no code generated (the ${opts.backend} backend is not written yet)\n`);
}

export function formatSummary(s: GraphSummary): string {
  const p = s.params;
  const lines = [
    `graph ${s.name}: ${commas(s.nodes)} nodes`,
    `params: ${commas(p.count)} in ${p.tensors} tensors, ${commas(p.bytes)} bytes (${humanBytes(p.bytes)})`,
    'ops:',
    table(s.ops.map(([op, n]) => [op, String(n)])),
    'inputs:',
    table(s.inputs.map((v) => [v.name, v.type])),
  ];
  if (s.state.length) lines.push('state:', table(s.state.map((v) => [v.name, v.type])));
  lines.push('outputs:', table(s.outputs.map((v) => [v.name, v.type])), `symbols: ${s.symbols.length ? s.symbols.join(', ') : '(none)'}`);
  return `${lines.join('\n')}\n`;
}
