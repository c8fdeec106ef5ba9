/**
 * llama.cpp (prebuilt inside node-llama-cpp) as an oracle: per-position greedy tokens and
 * full-vocabulary log-probabilities for given token ids, computed as exactly as llama.cpp can —
 * CPU only, flash attention off and an f32 KV cache (its defaults, flash attention and an f16
 * cache, cost ~3e-3 relative error). Tokens are fed as ids: no tokenizer, no automatic BOS.
 */
import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';

let llamaPromise: Promise<Llama> | undefined;

/** The shared llama.cpp instance; maxThreads 0 makes a context's `threads` exact. */
export function loadLlamaCpp(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', maxThreads: 0, logLevel: LlamaLogLevel.error });
  return llamaPromise;
}

/** Release llama.cpp's native state (the next `loadLlamaCpp` starts afresh). */
export async function disposeLlamaCpp(): Promise<void> {
  const p = llamaPromise;
  llamaPromise = undefined;
  if (p) await (await p).dispose();
}

export interface OracleOptions {
  /** One thread: on a couple of shared cores more threads often run slower (its workers spin). */
  readonly threads?: number;
  readonly contextSize?: number;
}

export interface PositionResult {
  /** llama.cpp's greedy choice after this position. */
  readonly token: number;
  /** ln p over the whole vocabulary; -Infinity where llama.cpp's f32 probability underflowed to 0. */
  readonly logProbs: Float64Array;
}

async function withSequence<T>(ggufPath: string, opts: OracleOptions, fn: (seq: import('node-llama-cpp').LlamaContextSequence, vocab: number) => Promise<T>): Promise<T> {
  const llama = await loadLlamaCpp();
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0, useMmap: false });
  try {
    const contextSize = opts.contextSize ?? model.trainContextSize;
    const context = await model.createContext({
      contextSize,
      batchSize: contextSize,
      threads: opts.threads ?? 1,
      flashAttention: false,
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    });
    try {
      return await fn(context.getSequence(), vocabOf(model));
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

function vocabOf(model: import('node-llama-cpp').LlamaModel): number {
  // The vocabulary size is the number of token strings in the file.
  const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } }).tokenizer?.ggml?.tokens;
  if (!tokens) throw new Error('llama.cpp oracle: the GGUF has no tokenizer.ggml.tokens');
  return tokens.length;
}

/** Run `tokens` from position 0 and return, for every position, the greedy next token and log p. */
export async function llamaCppLogProbs(ggufPath: string, tokens: readonly number[], opts: OracleOptions = {}): Promise<PositionResult[]> {
  return withSequence(ggufPath, opts, async (seq, vocab) => {
    const out = await seq.controlledEvaluate(
      tokens.map((t) => [t as import('node-llama-cpp').Token, { generateNext: { probabilities: true, token: true, options: { temperature: 0 } } }]),
    );
    return tokens.map((_, i) => {
      const next = out[i]?.next;
      if (!next?.probabilities || next.token == null) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
      const logProbs = new Float64Array(vocab).fill(-Infinity);
      for (const [t, p] of next.probabilities) logProbs[t] = Math.log(p);
      return { token: next.token, logProbs };
    });
  });
}

/** llama.cpp's greedy continuation of `prompt`, `steps` tokens long (one token evaluated per step). */
export async function llamaCppGreedy(ggufPath: string, prompt: readonly number[], steps: number, opts: OracleOptions = {}): Promise<number[]> {
  return withSequence(ggufPath, opts, async (seq) => {
    const out: number[] = [];
    const greedy = { generateNext: { token: true, options: { temperature: 0 } } };
    let input: import('node-llama-cpp').ControlledEvaluateInputItem[] = prompt.map((t, i) =>
      i === prompt.length - 1 ? [t as import('node-llama-cpp').Token, greedy] : (t as import('node-llama-cpp').Token),
    );
    while (out.length < steps) {
      const res = await seq.controlledEvaluate(input);
      const token = res[input.length - 1]?.next.token;
      if (token == null) throw new Error(`llama.cpp generated no token at step ${out.length}`);
      out.push(token);
      input = [[token, greedy]];
    }
    return out;
  });
}
