/**
 * The model rows: a preset's graph with seeded random weights, and a runner per contestant that
 * times a prefill (one step over all the prompt's tokens from an empty cache) and a decode (a
 * short prompt, then one token per step). Every contestant is fed the same token ids; the tokens
 * fed while decoding are fixed in advance rather than sampled, so no contestant's sampler is timed.
 */
import type { Backend } from '../backends/backend.js';
import type { Graph } from '../graph/graph.js';
import { type LlamaConfig, normalizeLlamaConfig } from '../src/dsl/llama.js';
import { PRESETS, presetModel } from '../src/dsl/presets.js';
import { mulberry32 } from '../src/runtime/rng.js';
import { randomWeights } from '../src/runtime/weights.js';

export interface ModelSpec {
  readonly preset: string;
  readonly config: LlamaConfig;
  readonly vocabSize: number;
  readonly graph: Graph;
  readonly weights: Record<string, Float32Array>;
  /** Bytes of f32 weights (what a decode step streams). */
  readonly weightBytes: number;
}

/** std 0.1, as the oracle tests use: trained-like magnitudes, no denormals, no overflow. */
export function modelSpec(preset: string, seed = 1): ModelSpec {
  const config = PRESETS[preset];
  if (!config) throw new Error(`bench: unknown preset '${preset}'`);
  const graph = presetModel(preset).build();
  const weights = randomWeights(graph, seed, 0.1);
  const weightBytes = Object.values(weights).reduce((s, w) => s + w.byteLength, 0);
  return { preset, config, vocabSize: normalizeLlamaConfig(config).vocabSize, graph, weights, weightBytes };
}

/** `n` seeded token ids, clear of the first few (special tokens in a LLaMA vocabulary). */
export function benchTokens(n: number, vocabSize: number, seed: number): number[] {
  const u = mulberry32(seed);
  const lo = Math.min(3, vocabSize - 1);
  return Array.from({ length: n }, () => lo + Math.floor(u() * (vocabSize - lo)));
}

export interface Decoded {
  readonly ms: number;
  readonly tokens: number;
}

/** What the model rows ask of every contestant; both return milliseconds. */
export interface LmRunner {
  /** Empty the cache, then run `tokens` in one step. */
  prefill(tokens: readonly number[]): Promise<number>;
  /**
   * Empty the cache, run `prompt` (untimed), then `tokens` one step each (timed), stopping early
   * once `budgetMs` has passed: returns the time and how many tokens were decoded.
   */
  decode(prompt: readonly number[], tokens: readonly number[], budgetMs: number): Promise<Decoded>;
  dispose(): Promise<void>;
}

/** A kiln Session on `backend`; its KV cache holds `maxSeqLen` positions. */
export async function kilnRunner(backend: Backend, spec: ModelSpec, maxSeqLen: number): Promise<LmRunner> {
  const { Session } = await import('../src/runtime/session.js');
  const session = await Session.create(spec.graph, { backend, weights: spec.weights, maxSeqLen });
  return {
    async prefill(tokens) {
      session.rollback(0);
      const t0 = performance.now();
      session.prefill(tokens);
      return performance.now() - t0;
    },
    async decode(prompt, tokens, budgetMs) {
      session.rollback(0);
      session.prefill(prompt);
      const t0 = performance.now();
      let n = 0;
      while (n < tokens.length && (n === 0 || performance.now() - t0 < budgetMs)) session.decode(tokens[n++]!);
      return { ms: performance.now() - t0, tokens: n };
    },
    async dispose() {
      // A Session holds only arrays (and the wasm backend's workers are its own to end).
    },
  };
}
