import fc from 'fast-check';
import type { Graph } from '../graph/graph.js';
import { type HostTensor, hostTensor } from '../graph/tensor.js';
import type { LlamaConfig } from '../src/dsl/llama.js';
import { normalSampler } from './seeded-random.js';

/** Seeded weights for every param of `g`: std 0.1, norm weights around 1. */
export function randomParams(g: Graph, seed: number): Record<string, HostTensor> {
  const randn = normalSampler(seed);
  const out: Record<string, HostTensor> = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs['name']);
    const shape = n.type.shape as number[];
    const size = shape.reduce((a, d) => a * d, 1);
    const isNorm = /norm\.weight$/.test(name);
    out[name] = hostTensor('f32', shape, Array.from({ length: size }, () => (isNorm ? 1 : 0) + 0.1 * randn()));
  }
  return out;
}

/** Random tiny LLaMA variants: MHA, GQA and MQA, either rope layout, every built-in activation. */
export const arbTinyLlama: fc.Arbitrary<LlamaConfig> = fc
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
  .map(({ group, headDim, ...c }) => ({ ...c, name: 'rand', nHeads: c.nKvHeads * group, dim: c.nKvHeads * group * headDim }));

