import fc from 'fast-check';
import type { Graph } from '../graph/graph.js';
import { type HostTensor, hostTensor } from '../graph/tensor.js';
import type { LlamaConfig } from '../src/dsl/llama.js';
import { arbLlamaConfig } from '../src/fuzz/tiny-llama.js';
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

/** Random tiny LLaMA variants: the fuzzer's own generator, under the name these tests have always used. */
export const arbTinyLlama: fc.Arbitrary<LlamaConfig> = arbLlamaConfig.map((c) => ({ ...c, name: 'rand' }));
