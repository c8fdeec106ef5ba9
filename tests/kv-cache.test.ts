/**
 * insert-kv-cache. The law: the step graph fed a sequence in any split of chunks (state carried
 * from one chunk to the next) gives the logits of one full-sequence pass, on random tiny LLaMA
 * variants, in float64.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import type { Graph } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import { type HostTensor, hostTensor, maxRelError } from '../graph/tensor.js';
import { typeToString } from '../graph/types.js';
import { llama } from '../src/dsl/llama.js';
import { presetModel } from '../src/dsl/presets.js';
import { insertKvCache, insertKvCacheGraph } from '../passes/insert-kv-cache.js';
import { thrown } from './helpers.js';
import { arbTinyLlama, randomParams } from './tiny-llama.js';

const tokensOf = (ids: readonly number[]) => hostTensor('i32', [ids.length], ids);

function zeroState(step: Graph): Record<string, HostTensor> {
  return Object.fromEntries(step.nodes.filter((n) => n.op === 'state').map((n) => [String(n.attrs['name']), hostTensor('f32', n.type.shape as number[])]));
}

/** Run `step` over `ids` cut at `cuts`; the logits of each chunk, in order. */
function runChunks(step: Graph, params: Record<string, HostTensor>, ids: readonly number[], cuts: readonly number[]): HostTensor[] {
  let state = zeroState(step);
  const out: HostTensor[] = [];
  const bounds = [0, ...cuts, ids.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const r = interpret(step, { inputs: { tokens: tokensOf(ids.slice(bounds[i], bounds[i + 1])) }, params, state, symbols: { pos: bounds[i]! } });
    out.push(r['logits']!);
    state = Object.fromEntries(Object.keys(state).map((k) => [k, r[`state:${k}`]!]));
  }
  return out;
}

function rows(t: HostTensor, from: number, to: number): HostTensor {
  const v = t.shape[1]!;
  return hostTensor(t.dtype, [to - from, v], t.data.subarray(from * v, to * v));
}

/** A sequence no longer than maxSeqLen and a split of it into chunks (sorted distinct cut points). */
const arbCase = arbTinyLlama.chain((c) =>
  fc.record({
    config: fc.constant(c),
    seed: fc.nat(),
    ids: fc.array(fc.integer({ min: 0, max: c.vocabSize - 1 }), { minLength: 1, maxLength: c.maxSeqLen }),
    cutSeeds: fc.array(fc.nat(), { maxLength: 4 }),
  }).map((r) => ({ ...r, cuts: [...new Set(r.cutSeeds.map((s) => 1 + (s % Math.max(1, r.ids.length - 1))).filter((x) => x < r.ids.length))].sort((a, b) => a - b) })),
);

describe('insert-kv-cache: the law', () => {
  it('any split into chunks gives the logits of one full pass', () => {
    fc.assert(
      fc.property(arbCase, ({ config, seed, ids, cuts }) => {
        const full = llama(config).build();
        const params = randomParams(full, seed);
        const want = interpret(full, { inputs: { tokens: tokensOf(ids) }, params })['logits']!;
        const step = insertKvCacheGraph(full).graph;
        const got = runChunks(step, params, ids, cuts);
        const bounds = [0, ...cuts, ids.length];
        got.forEach((t, i) => expect(maxRelError(t, rows(want, bounds[i]!, bounds[i + 1]!), 1e-12)).toBeLessThanOrEqual(1e-9));
      }),
      { numRuns: 40 },
    );
  });

  it('holds for learned position embeddings (an iota of positions, examples/gpt-layernorm.ts): the iota counts from pos', async () => {
    const full = ((await import('../examples/gpt-layernorm.js')) as { default: { build(): Graph } }).default.build();
    const step = insertKvCacheGraph(full, { maxSeqLen: 16 }).graph;
    expect(step.nodes.filter((n) => n.op === 'iota').map((n) => n.attrs['start'])).toEqual([sym('pos')]);
    const params = randomParams(full, 5);
    const ids = [5, 7, 11, 13, 17, 19, 23];
    const want = interpret(full, { inputs: { tokens: tokensOf(ids) }, params })['logits']!;
    for (const cuts of [[1, 2, 3, 4, 5, 6], [3], [2, 5]]) {
      const got = runChunks(step, params, ids, cuts);
      const bounds = [0, ...cuts, ids.length];
      got.forEach((t, i) => expect(maxRelError(t, rows(want, bounds[i]!, bounds[i + 1]!), 1e-12)).toBeLessThanOrEqual(1e-9));
    }
  });

  it('with lastLogitsOnly, each chunk gives the full pass’s row of its last token', () => {
    fc.assert(
      fc.property(arbCase, ({ config, seed, ids, cuts }) => {
        const full = llama(config).build();
        const params = randomParams(full, seed);
        const want = interpret(full, { inputs: { tokens: tokensOf(ids) }, params })['logits']!;
        const step = insertKvCacheGraph(full, { lastLogitsOnly: true }).graph;
        const got = runChunks(step, params, ids, cuts);
        const ends = [...cuts, ids.length];
        got.forEach((t, i) => {
          expect(t.shape).toEqual([1, config.vocabSize]);
          expect(maxRelError(t, rows(want, ends[i]! - 1, ends[i]!), 1e-12)).toBeLessThanOrEqual(1e-9);
        });
      }),
      { numRuns: 25 },
    );
  });
});

describe('insert-kv-cache: the step graph', () => {
  const full = presetModel('tiny').build();
  const step = insertKvCacheGraph(full).graph;
  const byName = (op: string) => step.nodes.filter((n) => n.op === op);

  it('takes tokens i32[seq] and a cache of rotated K and plain V per layer', () => {
    expect(byName('input').map((n) => `${String(n.attrs['name'])}: ${typeToString(n.type)}`)).toEqual(['tokens: i32[seq]']);
    expect(byName('state').map((n) => `${String(n.attrs['name'])}: ${typeToString(n.type)}`)).toEqual([
      'cache.k.0: f32[32, 2, 8]',
      'cache.v.0: f32[32, 2, 8]',
      'cache.k.1: f32[32, 2, 8]',
      'cache.v.1: f32[32, 2, 8]',
    ]);
    // The K cache stores keys after their rope; the V cache the projection as it is.
    for (const s of byName('state')) {
      const write = step.nodes.find((n) => n.op === 'update_slice' && n.inputs[0] === s.id)!;
      expect(step.nodes[write.inputs[1]!]!.op).toBe(String(s.attrs['name']).startsWith('cache.k') ? 'rope' : 'reshape');
    }
    expect(step.meta['kvCache']).toEqual({ maxSeqLen: 32, maxBatch: 32, states: ['cache.k.0', 'cache.v.0', 'cache.k.1', 'cache.v.1'] });
  });

  it('gives logits and the updated caches as outputs', () => {
    expect(step.outputs.map((o) => `${o.name}: ${typeToString(step.nodes[o.value]!.type)}`)).toEqual([
      'logits: f32[seq, 64]',
      'state:cache.k.0: f32[32, 2, 8]',
      'state:cache.v.0: f32[32, 2, 8]',
      'state:cache.k.1: f32[32, 2, 8]',
      'state:cache.v.1: f32[32, 2, 8]',
    ]);
    for (const o of step.outputs.slice(1)) expect(step.nodes[o.value]!.op).toBe('update_slice');
  });

  it('shifts q’s and k’s ropes and the mask by pos, and reads keys [0, pos + seq)', () => {
    const ropes = byName('rope').map((n) => `${n.scope} offset=${JSON.stringify(n.attrs['offset'])} ${typeToString(n.type)}`);
    expect(ropes).toEqual([
      'layers.0.attn.q_rope offset={"terms":{"pos":1},"offset":0} f32[seq, 4, 8]',
      'layers.0.attn.k_rope offset={"terms":{"pos":1},"offset":0} f32[seq, 2, 8]',
      'layers.1.attn.q_rope offset={"terms":{"pos":1},"offset":0} f32[seq, 4, 8]',
      'layers.1.attn.k_rope offset={"terms":{"pos":1},"offset":0} f32[seq, 2, 8]',
    ]);
    expect(byName('causal_mask').map((n) => `${JSON.stringify(n.attrs['offset'])} ${typeToString(n.type)}`)).toEqual([
      '{"terms":{"pos":1},"offset":0} f32[4, seq, pos + seq]',
      '{"terms":{"pos":1},"offset":0} f32[4, seq, pos + seq]',
    ]);
  });

  it('reports what it did as a pass', () => {
    const r = insertKvCache.run(full, {});
    expect(r.stats).toEqual({ attentions: 2, states: 4, cacheBytes: 4 * 32 * 2 * 8 * 4 });
    expect(r.graph.nodes.length).toBe(step.nodes.length);
  });

  it('takes maxSeqLen from the options over meta.llama', () => {
    const g = insertKvCacheGraph(full, { maxSeqLen: 5 }).graph;
    expect(g.nodes.filter((n) => n.op === 'state').map((n) => typeToString(n.type))).toEqual(Array(4).fill('f32[5, 2, 8]'));
  });
});

describe('insert-kv-cache: errors', () => {
  const full = presetModel('tiny').build();

  it('running past maxSeqLen is a clean K1009 at run time (the runtime must check pos + seq ≤ maxSeqLen first)', () => {
    const step = insertKvCacheGraph(full, { maxSeqLen: 4 }).graph;
    const params = randomParams(full, 1);
    const run = (pos: number, n: number) => interpret(step, { inputs: { tokens: tokensOf(Array(n).fill(1)) }, params, state: zeroState(step), symbols: { pos } });
    expect(() => run(2, 2)).not.toThrow();
    const e = thrown(() => run(3, 2));
    expect(e.code).toBe('K1009');
    expect(e.message).toMatch(/update_slice: \[3, 5\) is outside axis 0 of size 4/);
  });

  it('a graph without attention', () => {
    const b = new GraphBuilder('mlp');
    const t = b.add('input', [], { name: 'tokens', dtype: 'i32', shape: [sym('seq')] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [5, 3] });
    b.output('logits', b.add('gather', [w, t]));
    b.setMeta('llama', { maxSeqLen: 8 });
    const e = thrown(() => insertKvCacheGraph(b.build()));
    expect(e.code).toBe('K1018');
    expect(e.message).toBe('insert-kv-cache: graph mlp has no causal attention (no causal_mask node) to give a KV cache');
  });

  it('a graph without maxSeqLen', () => {
    const e = thrown(() => insertKvCacheGraph({ ...full, meta: {} }));
    expect(e.code).toBe('K1018');
    expect(e.message).toMatch(/no maxSeqLen/);
  });

  it('a graph that already has its cache', () => {
    const step = insertKvCacheGraph(full).graph;
    expect(thrown(() => insertKvCacheGraph(step)).message).toMatch(/already has state/);
  });

  it('a causal mask that does not sit in an attention', () => {
    const b = new GraphBuilder('odd');
    const t = b.add('input', [], { name: 'tokens', dtype: 'i32', shape: [sym('seq')] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [5, 3] });
    const x = b.add('gather', [w, t]); // [seq, 3]
    b.output('logits', b.add('causal_mask', [b.add('exp', [x])], { offset: 0 }));
    const e = thrown(() => insertKvCacheGraph(b.build(), { maxSeqLen: 4 }));
    expect(e.code).toBe('K1018');
    expect(e.message).toMatch(/causal_mask %\d+ is not part of an attention this pass understands: %\d+ gather sits between it and the score matmul/);
  });
});
