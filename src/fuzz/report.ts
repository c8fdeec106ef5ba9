import { plural } from '../cli/format.js';
/** How `kiln fuzz` tells what it found: enough to replay the case and to start on the fix. */
import { printText } from '../../graph/print/index.js';
import { preview } from './compare.js';
import type { FuzzFailure, FuzzResult } from './fuzz.js';
import { describeNode } from './locate.js';

export function formatFailure(f: FuzzFailure, replay: string): string {
  const lines = [
    `kiln fuzz: MISMATCH on the ${f.backend} backend (${f.kind === 'graph' ? 'a random graph' : 'a random tiny LLaMA'})`,
    `  ${f.problem}`,
    ``,
    `replay: ${replay}`,
    `  (fast-check seed ${f.seed}, counterexample path ${f.path || '-'}; values seed ${f.valuesSeed}${Object.keys(f.symbols).length ? `; symbols ${Object.entries(f.symbols).map(([k, v]) => `${k}=${v}`).join(', ')}` : ''})`,
  ];
  if (f.config) lines.push(``, `config: ${JSON.stringify(f.config)}`);
  lines.push(``, `smallest failing graph:`, printText(f.graph).trimEnd());
  lines.push(``, `first pass after which the interpreter's result differs from the original graph's:`);
  lines.push(f.firstPass ? `  #${f.firstPass.index} ${f.firstPass.pass}: ${f.firstPass.what}` : `  none: every pass keeps the interpreter's result, so the backend is at fault`);
  lines.push(``, `first node whose ${f.backend} value differs from the interpreter's (ids of the compiled program):`);
  if (f.firstNode) {
    const { node, got, want, mismatch } = f.firstNode;
    lines.push(`  ${describeNode(node)}`, `    ${f.backend}:      ${preview(got)}`, `    interpreter: ${preview(want)}`, `    worst at element ${mismatch.index}: ${mismatch.got} vs ${mismatch.want}`);
  } else lines.push(`  none found on the program as compiled (the difference is in how the outputs or the steps are run)`);
  if (f.program && f.firstNode) lines.push(``, `compiled program:`, printText(f.program).trimEnd());
  return `${lines.join('\n')}\n`;
}

export function formatSuccess(r: FuzzResult, backends: readonly string[]): string {
  return `kiln fuzz: ok — ${plural(r.runs.graph - r.skipped, 'random graph')} and ${plural(r.runs.llama, 'tiny LLaMA variant')} agree with the interpreter on ${backends.join(', ')} (${plural(r.skipped, 'more graph')} skipped: values the graph itself rejects) in ${(r.ms / 1000).toFixed(1)} s\n`;
}
