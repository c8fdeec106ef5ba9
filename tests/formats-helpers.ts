/** Fixtures for the checkpoint-format tests: seeded llama weights and a llama2.c v0 writer. */
import { writeFileSync } from 'node:fs';
import { type LlamaConfig, normalizeLlamaConfig } from '../src/dsl/llama.js';
import { expectedShapes } from '../src/formats/consistency.js';
import { normalSampler } from './seeded-random.js';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Every tensor `llama(config)` needs, normal(0, 0.1) (norm weights around 1), in llama order. */
export function seededTensors(config: LlamaConfig, seed = 1): NamedTensor[] {
  const randn = normalSampler(seed);
  return [...expectedShapes(normalizeLlamaConfig(config, undefined))].map(([name, { shape }]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const mean = name.includes('norm') ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = mean + 0.1 * randn();
    return { name, shape, data };
  });
}

/** A llama2.c legacy (v0) checkpoint of `tensors`; `shared` writes a positive vocab and no wcls. */
export function writeLlama2c(path: string, c: Required<Pick<LlamaConfig, 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'vocabSize' | 'maxSeqLen'>>, tensors: NamedTensor[], shared: boolean): void {
  const by = new Map(tensors.map((t) => [t.name, t.data]));
  const parts: Float32Array[] = [];
  const stacked = (n: string) => {
    for (let l = 0; l < c.nLayers; l++) parts.push(by.get(`blk.${l}.${n}`)!);
  };
  parts.push(by.get('token_embd.weight')!);
  for (const n of ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_down', 'ffn_up']) stacked(`${n}.weight`);
  parts.push(by.get('output_norm.weight')!);
  const hs = c.dim / c.nHeads;
  parts.push(new Float32Array(c.maxSeqLen * (hs / 2)).fill(7), new Float32Array(c.maxSeqLen * (hs / 2)).fill(-7)); // unused RoPE tables
  if (!shared) parts.push(by.get('output.weight')!);
  const header = new Int32Array([c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, shared ? c.vocabSize : -c.vocabSize, c.maxSeqLen]);
  writeFileSync(path, Buffer.concat([Buffer.from(header.buffer), ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))]));
}
