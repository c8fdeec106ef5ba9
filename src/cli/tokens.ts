/** Token ids from the command line: `--tokens 1,2,3`. */
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';

export function parseTokens(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p)))
    throw new KilnError('K1016', `--tokens: expected comma-separated token ids like 1,2,3, got '${text}'`);
  const huge = parts.find((p) => !Number.isSafeInteger(Number(p)));
  if (huge !== undefined) throw new KilnError('K1016', `--tokens: ${huge} is not a token id (ids are below the vocabulary size)`);
  return parts.map(Number);
}

/** The vocabulary size: the last dim of output `logits`. */
export function vocabOf(g: Graph): number {
  const out = g.outputs.find((o) => o.name === 'logits');
  const v = out && g.nodes.find((n) => n.id === out.value)?.type.shape.at(-1);
  if (typeof v !== 'number') throw new KilnError('K1018', `graph ${g.name} has no output 'logits' of shape [seq, vocab]; it is not a language model`);
  return v;
}

export function checkTokens(tokens: readonly number[], g: Graph): void {
  const V = vocabOf(g);
  const bad = tokens.findIndex((t) => t >= V);
  if (bad >= 0) throw new KilnError('K1016', `--tokens: token ${tokens[bad]} (at ${bad}) is outside the vocabulary of ${g.name}: ids are 0 to ${V - 1}`);
}
