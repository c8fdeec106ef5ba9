import { KilnError } from '../../graph/errors.js';
import { userSite } from '../../graph/source.js';
import { type LlamaConfig, llama } from './llama.js';
import type { Model } from './model.js';

/**
 * Published shapes. The Meta and llama2.c checkpoints store RoPE pairs interleaved, as GGUF does;
 * a Hugging Face checkpoint loaded as is would need ropeLayout 'half'.
 */
export const PRESETS: Readonly<Record<string, LlamaConfig>> = {
  'llama2-7b': { name: 'llama2-7b', vocabSize: 32000, dim: 4096, nLayers: 32, nHeads: 32, hiddenDim: 11008, maxSeqLen: 4096, normEps: 1e-5 },
  'llama2-13b': { name: 'llama2-13b', vocabSize: 32000, dim: 5120, nLayers: 40, nHeads: 40, hiddenDim: 13824, maxSeqLen: 4096, normEps: 1e-5 },
  'llama3-8b': { name: 'llama3-8b', vocabSize: 128256, dim: 4096, nLayers: 32, nHeads: 32, nKvHeads: 8, hiddenDim: 14336, maxSeqLen: 8192, ropeBase: 500000, normEps: 1e-5 },
  'tinyllama-1.1b': { name: 'tinyllama-1.1b', vocabSize: 32000, dim: 2048, nLayers: 22, nHeads: 32, nKvHeads: 4, hiddenDim: 5632, maxSeqLen: 2048, normEps: 1e-5 },
  // llama2.c's TinyStories models share the classifier with the embedding
  stories15M: { name: 'stories15M', vocabSize: 32000, dim: 288, nLayers: 6, nHeads: 6, hiddenDim: 768, maxSeqLen: 256, normEps: 1e-5, tiedEmbeddings: true },
  stories110M: { name: 'stories110M', vocabSize: 32000, dim: 768, nLayers: 12, nHeads: 12, hiddenDim: 2048, maxSeqLen: 1024, normEps: 1e-5, tiedEmbeddings: true },
  // small enough for the interpreter, with GQA so the grouping is exercised
  tiny: { name: 'tiny', vocabSize: 64, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 48, maxSeqLen: 32, normEps: 1e-5 },
};

export function presetModel(name: string): Model {
  const config = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!config) throw new KilnError('K1012', `unknown preset '${name}'; known presets: ${Object.keys(PRESETS).join(', ')}`, userSite());
  return llama(config);
}
