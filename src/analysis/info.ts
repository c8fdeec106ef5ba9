import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { numel } from '../../graph/types.js';
import { POS, insertKvCacheGraph } from '../../passes/insert-kv-cache.js';
import { tokensSymbol } from '../../passes/kv-util.js';
import { type FlopCount, graphFlops } from './flops.js';
import { kvCacheBytesPerToken, type LlamaMeta, llamaDecodeFlops, llamaMeta } from './llama.js';
import { type ParamStats, paramStats } from './params.js';
import { contextEnv, graphSymbols } from './symbols.js';

/** Everything `kiln info` reports: what the graph tells, and for a LLaMA what its config tells. */
export interface ModelInfo {
  readonly name: string;
  readonly context: number;
  readonly params: ParamStats;
  /** One run of the graph with its symbols bound as `contextEnv` says. */
  readonly graph: {
    readonly env: Readonly<Record<string, number>>;
    readonly tokens: number;
    readonly flops: FlopCount;
    readonly flopsPerToken: number;
  };
  readonly llama?: {
    readonly config: LlamaMeta;
    readonly decodeFlopsPerToken: { total: number; weights: number; attention: number };
    readonly kvBytesPerToken: number;
    readonly kvBytesFullContext: number;
  };
  /**
   * For a model without a LLaMA config that insert-kv-cache understands (a `model()` with causal
   * attention): one decode step measured on its step graph.
   */
  readonly step?: {
    /** FLOPs of one token at position context − 1, counted per op from the step graph's shapes. */
    readonly decodeFlops: FlopCount;
    readonly kvBytesPerToken: number;
    readonly kvBytesFullContext: number;
  };
  /** meta.llama describes another model than the graph holds (an edited JSON graph): its figures are left out. */
  readonly metaDisagrees?: { readonly metaKvBytesPerToken: number; readonly graphKvBytesPerToken: number };
}

/** The step graph's figures at `context`, or undefined when the graph has no attention the pass understands. */
function stepFacts(g: Graph, context: number): ModelInfo['step'] {
  let step: Graph;
  try {
    step = insertKvCacheGraph(g, { maxSeqLen: context }).graph;
  } catch (e) {
    if (e instanceof KilnError) return undefined;
    throw e;
  }
  const seq = tokensSymbol(step) ?? 'seq';
  const kvBytes = step.nodes.filter((n) => n.op === 'state').reduce((s, n) => s + 4 * numel(n.type.shape), 0);
  return { decodeFlops: graphFlops(step, { [seq]: 1, [POS]: context - 1 }), kvBytesPerToken: kvBytes / context, kvBytesFullContext: kvBytes };
}

export const DEFAULT_CONTEXT = 2048;

/** The context a model is measured at when none is given: its maxSeqLen, else 2048. */
export function defaultContext(g: Graph): number {
  return llamaMeta(g)?.maxSeqLen ?? DEFAULT_CONTEXT;
}

export function modelInfo(g: Graph, context: number = defaultContext(g)): ModelInfo {
  const { env, tokens } = contextEnv(graphSymbols(g), context);
  const flops = graphFlops(g, env);
  const meta = llamaMeta(g);
  const step = stepFacts(g, context);
  // the config is only a description: where the graph's own step form says otherwise, believe the graph
  const disagree = meta && step && step.kvBytesPerToken !== kvCacheBytesPerToken(meta);
  const c = disagree ? undefined : meta;
  return {
    name: g.name,
    context,
    params: paramStats(g),
    graph: { env, tokens, flops, flopsPerToken: flops.total / tokens },
    ...(disagree && { metaDisagrees: { metaKvBytesPerToken: kvCacheBytesPerToken(meta), graphKvBytesPerToken: step.kvBytesPerToken } }),
    ...(c && {
      llama: {
        config: c,
        decodeFlopsPerToken: llamaDecodeFlops(c, context),
        kvBytesPerToken: kvCacheBytesPerToken(c),
        kvBytesFullContext: kvCacheBytesPerToken(c) * c.maxSeqLen,
      },
    }),
    ...(!c && step && { step }),
  };
}
