import { defaultContext, type ModelInfo, modelInfo } from '../analysis/info.js';
import { commas, humanBytes, humanFlops, table } from './format.js';
import { writeStdout } from './io.js';
import { loadModel } from './load.js';

export interface InfoOptions {
  readonly context?: number;
  readonly json?: boolean;
  readonly typecheck?: boolean;
}

/**
 * `kiln info`: the model's size and cost, as text or JSON. For a checkpoint, first what the file
 * holds (format, size, tensors, dtype mix, tokenizer); the config below is the file's own.
 */
export async function info(spec: string, opts: InfoOptions): Promise<void> {
  const { graph: g, checkpoint } = await loadModel(spec, { typecheck: opts.typecheck !== false });
  const own = defaultContext(g);
  // measured as asked, but a context past the one the model was made for deserves a word
  if (opts.context !== undefined && g.meta['llama'] !== undefined && opts.context > own)
    process.stderr.write(`kiln: --context ${opts.context} is past the model's maxSeqLen ${own}: the figures are for positions it was not made for\n`);
  const facts = modelInfo(g, opts.context ?? own);
  const { checkpointFacts, formatCheckpointFacts } = await import('./checkpoint-facts.js');
  const file = checkpoint ? checkpointFacts(spec, checkpoint) : undefined;
  if (opts.json) await writeStdout(`${JSON.stringify(file ? { ...facts, checkpoint: file } : facts, null, 2)}\n`);
  else await writeStdout(file ? `${formatCheckpointFacts(file)}\n\n${formatInfo(facts)}` : formatInfo(facts));
}

/** A config value as text: a custom activation as its source (`x => …`), not [object Object]. */
function configValue(v: unknown): string {
  if (typeof v === 'object' && v !== null && typeof (v as { custom?: unknown }).custom === 'string') return `custom: ${(v as { custom: string }).custom}`;
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

export function formatInfo(m: ModelInfo): string {
  const C = m.context;
  const out: string[] = [];
  const p = m.params;
  out.push(
    `model ${m.name}`,
    table([
      ['parameters', `${commas(p.count)} in ${p.tensors} tensors${p.symbolic.length ? ` (+ ${p.symbolic.length} with symbolic shapes: ${p.symbolic.join(', ')})` : ''}`],
      ['weight bytes', `${commas(p.bytes)} (${humanBytes(p.bytes)}, f32)`],
      ['context', `${commas(C)}`],
    ]),
  );

  const env = Object.entries(m.graph.env).map(([k, v]) => `${k}=${v}`).join(', ');
  const byOp = Object.entries(m.graph.flops.byOp)
    .sort((a, b) => b[1] - a[1])
    .map(([op, f]) => [op, `${humanFlops(f)} (${((100 * f) / (m.graph.flops.total || 1)).toFixed(1)}%)`] as const);
  out.push(
    '',
    `graph FLOPs, one run${env ? ` with ${env}` : ''} (counted per op from the shapes)`,
    table([
      ['total', `${commas(m.graph.flops.total)} (${humanFlops(m.graph.flops.total)})`],
      [`per token`, `${commas(m.graph.flopsPerToken)} (${humanFlops(m.graph.flopsPerToken)}, averaged over ${commas(m.graph.tokens)} token${m.graph.tokens === 1 ? '' : 's'})`],
    ]),
    table(byOp, '    '),
  );

  const l = m.llama;
  if (l) {
    const d = l.decodeFlopsPerToken;
    out.push(
      '',
      `decode one token at context ${commas(C)} (from the LLaMA config)`,
      table([
        ['FLOPs/token', `${commas(d.total)} (${humanFlops(d.total)})`],
        ['  weights', `${commas(d.weights)} = 2 · matmul weights (q, k, v, o and the FFN's per layer, and the output head)`],
        ['  attention', `${commas(d.attention)} = 2 · 2 · nLayers · C · nHeads · headDim (q·kᵀ and the weighted sum of v over C positions)`],
        ['', 'norms, RoPE, softmax and elementwise ops are not counted'],
        ['KV cache', `${commas(l.kvBytesPerToken)} bytes/token = 2 · nLayers · nKvHeads · headDim · 4 (f32)`],
        ['  full context', `${commas(l.kvBytesFullContext)} bytes (${humanBytes(l.kvBytesFullContext)}) at maxSeqLen ${commas(l.config.maxSeqLen)}`],
      ]),
      '',
      'config',
      table(Object.entries(l.config).map(([k, v]) => [k, typeof v === 'number' && Number.isInteger(v) ? commas(v) : configValue(v)])),
    );
  }
  if (m.metaDisagrees)
    out.push('', `meta.llama describes another model than this graph (its KV cache: ${commas(m.metaDisagrees.metaKvBytesPerToken)} bytes/token, the graph's: ${commas(m.metaDisagrees.graphKvBytesPerToken)}): the figures below are the graph's`);
  const s = m.step;
  if (s) {
    const top = Object.entries(s.decodeFlops.byOp).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([op, f]) => `${op} ${((100 * f) / (s.decodeFlops.total || 1)).toFixed(1)}%`);
    out.push(
      '',
      `decode one token at context ${commas(C)} (from the graph's step form, as insert-kv-cache makes it)`,
      table([
        ['FLOPs/token', `${commas(s.decodeFlops.total)} (${humanFlops(s.decodeFlops.total)}; ${top.join(', ')})`],
        ['KV cache', `${commas(s.kvBytesPerToken)} bytes/token (f32)`],
        ['  full context', `${commas(s.kvBytesFullContext)} bytes (${humanBytes(s.kvBytesFullContext)}) at ${commas(C)} positions`],
      ]),
    );
  }
  return `${out.join('\n')}\n`;
}
