import type { LlamaConfig } from '../../src/dsl/llama.js';

/**
 * The shapes checked against llama.cpp. Together they cover MHA, GQA and MQA, an odd width
 * (72 = 3 heads of 24, hidden 200), tied and untied heads, RoPE base 10000 and 500000, and
 * RMSNorm eps 1e-5 and 1e-6. The vocabulary is the synthetic one (control, 256 bytes, pieces).
 */
export interface OracleCase {
  readonly config: LlamaConfig & { readonly name: string };
  /** Seed of the random weights (std 0.1; norm weights 1 ± 0.1). */
  readonly seed: number;
  /** How the matrices are stored (norm weights stay f32); default f32. */
  readonly matrixDtype?: 'f32' | 'q8_0';
}

export const ORACLE_CASES: readonly OracleCase[] = [
  { seed: 1, config: { name: 'mha', vocabSize: 300, dim: 64, nLayers: 2, nHeads: 4, hiddenDim: 160, maxSeqLen: 64, ropeBase: 10000, normEps: 1e-5 } },
  { seed: 2, config: { name: 'gqa-tied', vocabSize: 300, dim: 64, nLayers: 2, nHeads: 8, nKvHeads: 2, hiddenDim: 176, maxSeqLen: 64, ropeBase: 500000, normEps: 1e-6, tiedEmbeddings: true } },
  { seed: 3, config: { name: 'mqa', vocabSize: 320, dim: 96, nLayers: 3, nHeads: 6, nKvHeads: 1, hiddenDim: 256, maxSeqLen: 64, ropeBase: 10000, normEps: 1e-6 } },
  { seed: 4, config: { name: 'odd-dims', vocabSize: 301, dim: 72, nLayers: 2, nHeads: 3, hiddenDim: 200, maxSeqLen: 128, ropeBase: 500000, normEps: 1e-5, tiedEmbeddings: true } },
  // q8_0 rows are blocks of 32 values: every matrix's inner size (dim 64, hidden 160) is a multiple.
  { seed: 5, matrixDtype: 'q8_0', config: { name: 'mha-q8_0', vocabSize: 300, dim: 64, nLayers: 2, nHeads: 4, hiddenDim: 160, maxSeqLen: 64, ropeBase: 10000, normEps: 1e-5 } },
];
