import type { Graph } from '../graph/graph.js';

/**
 * One shape for every pass: a pure function Graph → Graph with a name, a one-line reason (shown in
 * `kiln compile` and in the pipeline listing), and stats it reports (ops fused, bytes planned, …).
 * The pass manager adds timing and node counts before and after.
 */
export interface PassOptions {
  /** insert-kv-cache: compute logits for the last position only. */
  readonly lastLogitsOnly?: boolean;
  /** insert-kv-cache / plan-memory: the longest sequence (defaults to graph.meta.llama.maxSeqLen). */
  readonly maxSeqLen?: number;
  /**
   * insert-kv-cache / plan-memory: the most tokens one step runs (seq ≤ maxBatch, default
   * maxSeqLen). A runtime feeds a longer prompt in steps of at most this many, so attention's
   * scores take [heads, maxBatch, maxSeqLen] rather than [heads, maxSeqLen, maxSeqLen].
   */
  readonly maxBatch?: number;
}

export type PassStats = Record<string, number | string>;

export interface PassResult {
  readonly graph: Graph;
  readonly stats: PassStats;
}

export interface Pass {
  readonly name: string;
  readonly reason: string;
  run(g: Graph, opts: PassOptions): PassResult;
}
