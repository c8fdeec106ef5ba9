/**
 * Grouped-query attention: 8 query heads share 2 key/value heads (each kv head serves a group of
 * 4), so the KV cache is 4× smaller. The rest is the LLaMA of `llama()`, here with LLaMA 3's RoPE
 * base and an untied output head.
 *
 *   kiln compile examples/llama-gqa.ts
 */
import { llama } from 'kiln';

export default llama({
  name: 'llama-gqa',
  vocabSize: 4096,
  dim: 256,
  nLayers: 4,
  nHeads: 8,
  nKvHeads: 2, // GQA: query head h reads kv head ⌊h / 4⌋
  hiddenDim: 688,
  maxSeqLen: 512,
  ropeBase: 500000,
  normEps: 1e-5,
});
