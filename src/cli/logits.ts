import { writeStdout } from './io.js';
import { loadModel } from './load.js';
import { checkTokens, parseTokens } from './tokens.js';

export interface LogitsOptions {
  readonly tokens: string;
  readonly backend: string;
  readonly weightsSeed?: number;
  readonly json?: boolean;
  readonly typecheck?: boolean;
}

/**
 * `kiln logits`: the logits after the last of `--tokens`, with a checkpoint's weights (seeded
 * random ones for anything else). On `interpret` that is the reference
 * interpreter running the full-sequence graph as written (no passes); on a backend, the
 * session's prefill program. Comparing the two is the quickest check of a backend.
 */
export async function logits(spec: string, opts: LogitsOptions): Promise<void> {
  const tokens = parseTokens(opts.tokens);
  const { graph: g, checkpoint } = await loadModel(spec, { typecheck: opts.typecheck !== false });
  checkTokens(tokens, g);
  if (checkpoint && opts.weightsSeed !== undefined) process.stderr.write(`kiln: --weights-seed applies to models without a checkpoint; ${spec} brings its own weights, so it is ignored\n`);
  const { randomWeights, weightsToHost } = await import('../runtime/weights.js');
  const { checkpointWeights } = await import('../formats/checkpoint.js');
  const weights = checkpoint ? checkpointWeights(checkpoint) : randomWeights(g, opts.weightsSeed ?? 0);
  let values: Float32Array;
  if (opts.backend === 'interpret') {
    const { interpret } = await import('../../graph/interpret.js');
    const { hostTensor } = await import('../../graph/tensor.js');
    const all = interpret(g, { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params: weightsToHost(g, weights) })['logits']!;
    const V = all.shape.at(-1)!;
    values = Float32Array.from(all.data.subarray(all.data.length - V));
  } else {
    const { Session } = await import('../runtime/session.js');
    const { loadBackend } = await import('./backends.js');
    const { modelMaxSeqLen } = await import('./compile.js');
    const own = modelMaxSeqLen(g);
    const session = await Session.create(g, { backend: await loadBackend(opts.backend), weights, maxSeqLen: Math.max(own ?? 0, tokens.length) });
    values = session.prefill(tokens);
  }
  if (opts.json) {
    await writeStdout(`${JSON.stringify({ tokens, backend: opts.backend, logits: Array.from(values) })}\n`);
    return;
  }
  await writeStdout(formatLogits(values, tokens.length, opts.backend));
}

export function formatLogits(values: Float32Array, position: number, backend: string): string {
  const order = Array.from(values.keys()).sort((a, b) => values[b]! - values[a]! || a - b);
  const top = order.slice(0, 10);
  const w = Math.max(...top.map((i) => String(i).length));
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const lines = [
    `logits at position ${position - 1} (${backend}), top ${top.length} of ${values.length}:`,
    ...top.map((i) => `  ${String(i).padStart(w)}  ${values[i]!.toFixed(6)}`),
    `min ${min.toFixed(6)}, max ${max.toFixed(6)}, mean ${(sum / values.length).toFixed(6)}, argmax ${order[0]}`,
  ];
  return `${lines.join('\n')}\n`;
}
