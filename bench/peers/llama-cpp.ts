/**
 * llama.cpp as a contestant, through node-llama-cpp: the bench's model written as GGUF by kiln's
 * own writer (same random weights, f32), CPU only, flash attention off and an f32 KV cache (as
 * kiln computes), token ids fed directly. A prefill is one evaluation of all the prompt's tokens;
 * a decode is one evaluation per token. Each timed evaluation asks for the next token (greedy) so
 * that llama.cpp computes the output head as kiln does — without an output requested it would skip
 * the 32000-row classifier, a fifth of a stories110M step.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { llamaGgufMetadata, writeGguf } from '../../src/formats/gguf-write.js';
import { syntheticVocab } from '../../src/tokenizer/synthetic.js';
import type { LmRunner, ModelSpec } from '../models.js';

/** `<unk>`, `<s>`, `</s>` and the 256 byte tokens every synthetic LLaMA vocabulary starts with. */
const BASE_TOKENS = 3 + 256;

export interface LlamaCppModel {
  /** One context (and so one runner) per thread count. */
  runner(threads: number): Promise<LmRunner>;
  readonly version: string;
  dispose(): Promise<void>;
}

/** Write the GGUF to a temporary folder and load it; throws with a reason when llama.cpp cannot. */
export async function loadLlamaCpp(spec: ModelSpec, contextSize: number): Promise<LlamaCppModel> {
  if (spec.vocabSize < BASE_TOKENS + 1) throw new Error(`a LLaMA vocabulary needs more than ${BASE_TOKENS} tokens; ${spec.preset} has ${spec.vocabSize}`);
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const dir = mkdtempSync(join(os.tmpdir(), 'kiln-bench-'));
  const path = join(dir, `${spec.preset}.gguf`);
  const vocab = syntheticVocab(Array.from({ length: spec.vocabSize - BASE_TOKENS }, (_, i) => ` w${i}`));
  const params = spec.graph.nodes.filter((n) => n.op === 'param');
  const tensors = params.map((n) => {
    const name = String(n.attrs['name']);
    return { name, dtype: 'f32' as const, shape: n.type.shape as number[], data: spec.weights[name]! };
  });
  try {
    writeGguf(path, { metadata: llamaGgufMetadata(spec.config, vocab), tensors });
    // maxThreads 0: a context's `threads` is then exactly the number used.
    const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 0, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: false });
    rmSync(dir, { recursive: true, force: true }); // loaded into memory (no mmap): the file can go
    const contexts: { dispose(): Promise<void> }[] = [];
    return {
      version: `llama.cpp ${llama.llamaCppRelease.release} (node-llama-cpp)`,
      async runner(threads) {
        const context = await model.createContext({
          contextSize,
          batchSize: contextSize,
          threads,
          flashAttention: false,
          experimentalKvCacheKeyType: 'F32',
          experimentalKvCacheValueType: 'F32',
        });
        contexts.push(context);
        const seq = context.getSequence();
        type Item = import('node-llama-cpp').ControlledEvaluateInputItem;
        type Token = import('node-llama-cpp').Token;
        const next = { generateNext: { token: true, options: { temperature: 0 } } };
        const items = (tokens: readonly number[]): Item[] => tokens.map((t, i) => (i === tokens.length - 1 ? [t as Token, next] : (t as Token)));
        return {
          async prefill(tokens) {
            await seq.clearHistory();
            const t0 = performance.now();
            await seq.controlledEvaluate(items(tokens));
            return performance.now() - t0;
          },
          async decode(prompt, tokens, budgetMs) {
            await seq.clearHistory();
            await seq.controlledEvaluate(items(prompt));
            const t0 = performance.now();
            let n = 0;
            while (n < tokens.length && (n === 0 || performance.now() - t0 < budgetMs)) await seq.controlledEvaluate([[tokens[n++]! as Token, next]]);
            return { ms: performance.now() - t0, tokens: n };
          },
          async dispose() {
            await context.dispose();
          },
        };
      },
      async dispose() {
        for (const c of contexts) await c.dispose();
        await model.dispose();
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
