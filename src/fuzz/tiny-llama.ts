/** Random tiny LLaMA variants for `kiln fuzz`: MHA, GQA and MQA, both rope layouts, every built-in activation and norm. */
import fc from 'fast-check';
import type { LlamaConfig } from '../dsl/llama.js';

export const arbLlamaConfig: fc.Arbitrary<LlamaConfig> = fc
  .record({
    nKvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.constantFrom(2, 4, 6),
    nLayers: fc.integer({ min: 1, max: 2 }),
    vocabSize: fc.integer({ min: 3, max: 12 }),
    hiddenDim: fc.integer({ min: 2, max: 10 }),
    maxSeqLen: fc.integer({ min: 3, max: 7 }),
    ropeBase: fc.constantFrom(10000, 500000, 7.5),
    ropeLayout: fc.constantFrom('interleaved' as const, 'half' as const),
    activation: fc.constantFrom('swiglu' as const, 'geglu' as const, 'gelu' as const, 'relu' as const, 'relu2' as const),
    norm: fc.constantFrom('rms' as const, 'layer' as const),
    tiedEmbeddings: fc.boolean(),
  })
  .map(({ group, headDim, ...c }) => ({ ...c, name: 'fuzz-llama', nHeads: c.nKvHeads * group, dim: c.nKvHeads * group * headDim }));
