import { type Dim, dimSymbols } from '../../graph/dim.js';
import type { Graph } from '../../graph/graph.js';
import { OPS } from '../../graph/ops.js';

/** Every dim symbol a graph mentions (in value shapes and in dim-valued attributes), sorted. */
export function graphSymbols(g: Graph): string[] {
  const syms = new Set<string>();
  const addDim = (d: Dim) => dimSymbols(d).forEach((s) => syms.add(s));
  for (const n of g.nodes) {
    n.type.shape.forEach(addDim);
    for (const [k, kind] of Object.entries(OPS[n.op].attrs)) {
      const v = n.attrs[k];
      if (v === undefined) continue;
      if (kind === 'dim') addDim(v as Dim);
      else if (kind === 'dims') (v as readonly Dim[]).forEach(addDim);
    }
  }
  return [...syms].sort();
}

/**
 * Symbol values for measuring a graph "at context C". A full-sequence graph (symbol `seq`, no
 * `pos`) is measured as one forward pass over C tokens. A step graph with a KV cache (`pos` = the
 * start position) is measured as one decode step: one new token after C − 1 cached ones. Any other
 * symbol is bound to C. `tokens` is how many tokens that run produces logits for.
 */
export function contextEnv(symbols: readonly string[], context: number): { env: Record<string, number>; tokens: number } {
  const env: Record<string, number> = {};
  const step = symbols.includes('pos');
  for (const s of symbols) env[s] = context;
  if (step) {
    env['pos'] = context - 1;
    if (symbols.includes('seq')) env['seq'] = 1;
  }
  return { env, tokens: symbols.includes('seq') ? env['seq']! : 1 };
}
