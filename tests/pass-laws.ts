import fc from 'fast-check';
import { evalDim } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { type Bindings, interpret } from '../graph/interpret.js';
import { type HostTensor, hostTensor, maxRelError, numelOf } from '../graph/tensor.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { mulberry32, normalSampler } from './seeded-random.js';

/**
 * What the pass tests share: seeded random bindings for any graph, the law "a pass keeps the
 * outputs" checked with the interpreter, and random tiny LLaMA variants built with the DSL.
 */

/** Random values for every input, param and state of `g`: f32 normal × std, i32 in [0, intRange). */
export function randomBindings(g: Graph, seed: number, symbols: Record<string, number>, std = 1, intRange = 2): Bindings {
  const normal = normalSampler(seed);
  const uniform = mulberry32(seed ^ 0x5bd1e995);
  const b = { inputs: {} as Record<string, HostTensor>, params: {} as Record<string, HostTensor>, state: {} as Record<string, HostTensor>, symbols };
  const kinds = { input: b.inputs, param: b.params, state: b.state } as const;
  for (const n of g.nodes) {
    const into = kinds[n.op as keyof typeof kinds];
    if (!into) continue;
    const shape = n.type.shape.map((d) => evalDim(d, symbols));
    const data = Array.from({ length: numelOf(shape) }, () => (n.type.dtype === 'i32' ? Math.floor(uniform() * intRange) : normal() * std));
    into[String(n.attrs['name'])] = hostTensor(n.type.dtype, shape, data);
  }
  return b;
}

/**
 * Interpret `before` and `after` on the same bindings and return the worst relative error over the
 * outputs (by name), or undefined when `before` itself fails to run (an index out of range, a
 * slice past a bound at these symbol values): such a case says nothing about the pass.
 */
export function outputError(before: Graph, after: Graph, b: Bindings): number | undefined {
  let want: Record<string, HostTensor>;
  try {
    want = interpret(before, b);
  } catch (e) {
    if (e instanceof KilnError) return undefined;
    throw e;
  }
  const got = interpret(after, b);
  const names = Object.keys(want);
  if (Object.keys(got).sort().join() !== [...names].sort().join()) return Infinity;
  return Math.max(0, ...names.map((k) => maxRelError(got[k]!, want[k]!)));
}

export type TinyActivation = 'swiglu' | 'geglu' | 'gelu' | 'relu' | 'relu2' | 'custom';

export interface TinyLlama {
  readonly config: LlamaConfig;
  readonly activation: TinyActivation;
  readonly seed: number;
  readonly seq: number;
}

/** Random small LLaMA variants: dims, heads, kv heads, layers, rope layout and base, norm, activation, tying. */
export function arbTinyLlama(): fc.Arbitrary<TinyLlama> {
  return fc
    .record({
      nKvHeads: fc.integer({ min: 1, max: 2 }),
      groups: fc.integer({ min: 1, max: 3 }),
      headDim: fc.constantFrom(2, 4),
      nLayers: fc.integer({ min: 1, max: 2 }),
      hiddenDim: fc.integer({ min: 3, max: 8 }),
      vocabSize: fc.integer({ min: 5, max: 12 }),
      ropeLayout: fc.constantFrom('interleaved' as const, 'half' as const),
      ropeBase: fc.constantFrom(10000, 500000, 50),
      norm: fc.constantFrom('rms' as const, 'layer' as const),
      activation: fc.constantFrom<TinyActivation>('swiglu', 'geglu', 'gelu', 'relu', 'relu2', 'custom'),
      tiedEmbeddings: fc.boolean(),
      seed: fc.nat(),
      seq: fc.integer({ min: 1, max: 4 }),
    })
    .map((r) => {
      const nHeads = r.nKvHeads * r.groups;
      const config: LlamaConfig = {
        name: 'tiny-random',
        vocabSize: r.vocabSize,
        dim: nHeads * r.headDim,
        nLayers: r.nLayers,
        nHeads,
        nKvHeads: r.nKvHeads,
        hiddenDim: r.hiddenDim,
        maxSeqLen: 8,
        ropeBase: r.ropeBase,
        ropeLayout: r.ropeLayout,
        norm: r.norm,
        activation: r.activation === 'custom' ? (x) => x * Math.tanh(x) + 0.5 * x : r.activation,
        tiedEmbeddings: r.tiedEmbeddings,
      };
      return { config, activation: r.activation, seed: r.seed, seq: r.seq };
    });
}

/** The variant's graph and seeded bindings: weights with std 0.1, tokens in the vocabulary. */
export function tinyLlamaCase(t: TinyLlama): { graph: Graph; bindings: Bindings } {
  const graph = llama(t.config).build();
  const bindings = randomBindings(graph, t.seed, { seq: t.seq }, 0.1, t.config.vocabSize);
  return { graph, bindings };
}
