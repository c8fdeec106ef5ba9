import type { Graph } from '../../graph/graph.js';
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
}

export const DEFAULT_CONTEXT = 2048;

/** The context a model is measured at when none is given: its maxSeqLen, else 2048. */
export function defaultContext(g: Graph): number {
  return llamaMeta(g)?.maxSeqLen ?? DEFAULT_CONTEXT;
}

export function modelInfo(g: Graph, context: number = defaultContext(g)): ModelInfo {
  const { env, tokens } = contextEnv(graphSymbols(g), context);
  const flops = graphFlops(g, env);
  const c = llamaMeta(g);
  return {
    name: g.name,
    context,
    params: paramStats(g),
    graph: { env, tokens, flops, flopsPerToken: flops.total / tokens },
    ...(c && {
      llama: {
        config: c,
        decodeFlopsPerToken: llamaDecodeFlops(c, context),
        kvBytesPerToken: kvCacheBytesPerToken(c),
        kvBytesFullContext: kvCacheBytesPerToken(c) * c.maxSeqLen,
      },
    }),
  };
}
