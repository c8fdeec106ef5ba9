import type { Graph } from '../../graph/graph.js';

/**
 * Closed-form sizes of a LLaMA-family model from its config (`graph.meta.llama`, written by the
 * DSL). These are the textbook formulas, kept apart from the graph-derived counts so that tests can
 * hold one against the other.
 */

/** The normalised config the DSL records in `graph.meta.llama` (the fields these formulas need). */
export interface LlamaMeta {
  readonly vocabSize: number;
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly hiddenDim: number;
  readonly maxSeqLen: number;
  readonly tiedEmbeddings: boolean;
  /** 'rms' (a weight per norm) or 'layer' (a weight and a bias). */
  readonly norm: 'rms' | 'layer';
  /** A name ('swiglu', 'gelu', …) or a custom gated activation `{ custom: source }`. */
  readonly activation: unknown;
  readonly [key: string]: unknown;
}

/** Activations with a plain (ungated) FFN `down(act(up x))`: two matrices instead of three. */
const PLAIN_ACTIVATIONS: readonly unknown[] = ['gelu', 'relu', 'relu2'];

const NUMERIC = ['vocabSize', 'dim', 'nLayers', 'nHeads', 'nKvHeads', 'hiddenDim', 'maxSeqLen'] as const;

/** The LLaMA config of a graph, or undefined for a graph that is not a LLaMA (or lacks the facts). */
export function llamaMeta(g: Graph): LlamaMeta | undefined {
  const m = g.meta['llama'];
  if (typeof m !== 'object' || m === null) return undefined;
  const r = m as Record<string, unknown>;
  if (!NUMERIC.every((k) => typeof r[k] === 'number' && Number.isInteger(r[k]) && (r[k] as number) > 0)) return undefined;
  return {
    ...r,
    tiedEmbeddings: r['tiedEmbeddings'] === true,
    norm: r['norm'] === 'layer' ? 'layer' : 'rms',
    activation: r['activation'] ?? 'swiglu',
  } as LlamaMeta;
}

export function headDim(c: LlamaMeta): number {
  return c.dim / c.nHeads;
}

/** FFN weight matrices per layer: 3 when gated (gate, up, down; SwiGLU and kin), else 2. */
export function ffnMatrices(c: LlamaMeta): number {
  return PLAIN_ACTIVATIONS.includes(c.activation) ? 2 : 3;
}

/**
 * Weights that take part in a matmul for every token: per layer wq [dim, dim], wk and wv
 * [nKvHeads·headDim, dim], wo [dim, dim], the FFN's up and down [hiddenDim, dim] (and gate, when
 * gated); plus the output head [vocab, dim] (a matmul whether or not it shares the embedding's
 * storage). The embedding itself is a gather (no arithmetic) and the norms' weights are vectors.
 */
export function llamaMatmulParams(c: LlamaMeta): number {
  const kv = c.nKvHeads * headDim(c);
  const perLayer = 2 * c.dim * c.dim + 2 * kv * c.dim + ffnMatrices(c) * c.hiddenDim * c.dim;
  return c.nLayers * perLayer + c.vocabSize * c.dim;
}

/** All weights: embedding, matmul weights, norms (2 per layer and a final one), less the head when tied. */
export function llamaParamCount(c: LlamaMeta): number {
  const normParams = (c.norm === 'layer' ? 2 : 1) * c.dim;
  const head = c.tiedEmbeddings ? 0 : c.vocabSize * c.dim;
  return c.vocabSize * c.dim + llamaMatmulParams(c) - c.vocabSize * c.dim + head + (2 * c.nLayers + 1) * normParams;
}

/**
 * FLOPs to decode one token with C positions in the KV cache: 2 per matmul weight (a multiply-add),
 * plus attention over the cache — q·kᵀ scores and the weighted sum of v, each 2·C·headDim per head
 * per layer. Norms, RoPE, softmax and elementwise ops are left out (a few per element of the
 * activations, small next to the weights).
 */
export function llamaDecodeFlops(c: LlamaMeta, context: number): { total: number; weights: number; attention: number } {
  const weights = 2 * llamaMatmulParams(c);
  const attention = 2 * 2 * c.nLayers * context * c.nHeads * headDim(c);
  return { total: weights + attention, weights, attention };
}

/** Bytes of K and V cached per token: 2 (K and V) · nLayers · nKvHeads · headDim · bytes per element. */
export function kvCacheBytesPerToken(c: LlamaMeta, bytesPerElement = 4): number {
  return 2 * c.nLayers * c.nKvHeads * headDim(c) * bytesPerElement;
}
