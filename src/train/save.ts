/**
 * The trained model, written as every other kiln checkpoint is (formats/convert.ts): `model.gguf`
 * (llama.cpp's layout, with the tokenizer in its metadata) and `safetensors/` (Hugging Face's:
 * model.safetensors, config.json, tokenizer.json). Float32, whole or not at all.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import type { LlamaConfig, NormalizedLlamaConfig } from '../dsl/llama.js';
import type { Checkpoint, TokenizerData } from '../formats/checkpoint.js';
import { makeTensor } from '../formats/consistency.js';
import { writeCheckpointGguf, writeCheckpointSafetensors } from '../formats/convert.js';
import { trainableParams } from './step.js';

/** The model's config as a checkpoint stores it (a custom activation cannot be). */
function configOf(g: Graph): LlamaConfig {
  const c = g.meta['llama'] as NormalizedLlamaConfig | undefined;
  if (!c) throw new KilnError('K1018', `${g.name}: kiln saves LLaMA-family models (built with llama()); this graph has no LLaMA config`);
  if (typeof c.activation !== 'string') throw new KilnError('K1018', `${g.name}: a custom activation cannot be stored in GGUF or safetensors`);
  const { headDim: _derived, ...config } = c;
  return { ...config, activation: c.activation };
}

/** Writes `dir`/model.gguf and `dir`/safetensors/; returns the paths written. */
export function saveTrainedModel(dir: string, g: Graph, weights: Readonly<Record<string, Float32Array>>, tokenizer: TokenizerData | undefined): string[] {
  const config = configOf(g);
  const tensors = new Map(
    trainableParams(g).map((p) => {
      const w = weights[p.name]!;
      return [p.name, makeTensor(p.name, 'f32', p.shape, new Uint8Array(w.buffer, w.byteOffset, w.byteLength))];
    }),
  );
  mkdirSync(dir, { recursive: true });
  const gguf = join(dir, 'model.gguf');
  const ck: Checkpoint = { file: gguf, format: 'gguf', config, tensors, ...(tokenizer ? { tokenizer } : {}), metadata: {} };
  writeCheckpointGguf(ck, gguf);
  const st = writeCheckpointSafetensors(ck, join(dir, 'safetensors'));
  return [gguf, ...st];
}
