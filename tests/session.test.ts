import { describe, expect, it } from 'vitest';
import { jsBackend } from '../backends/js/index.js';
import { createWasmBackend } from '../backends/wasm/index.js';
import { KilnError } from '../graph/errors.js';
import { parseGraph, stringifyGraph } from '../graph/print/index.js';
import { presetModel } from '../src/dsl/presets.js';
import { interpretBackend } from '../src/runtime/interpret-backend.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights } from '../src/runtime/weights.js';

const g = presetModel('tiny').build();
const weights = randomWeights(g, 1);
const make = () => Session.create(g, { backend: jsBackend, weights });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('randomWeights', () => {
  it('is seeded: same seed same bits, norms near 1', () => {
    expect(randomWeights(g, 1)['blk.0.attn_q.weight']).toEqual(weights['blk.0.attn_q.weight']);
    expect(randomWeights(g, 2)['blk.0.attn_q.weight']).not.toEqual(weights['blk.0.attn_q.weight']);
    const norm = weights['blk.0.attn_norm.weight']!;
    expect(norm.reduce((s, v) => s + v, 0) / norm.length).toBeCloseTo(1, 1);
  });
});

describe('Session', () => {
  it('generate refuses to sample from logits that are not finite', async () => {
    const bad = { ...weights, 'token_embd.weight': weights['token_embd.weight']!.map((v, i) => (i === 2 * 32 ? NaN : v)) };
    const s = await Session.create(g, { backend: jsBackend, weights: bad });
    const run = async () => {
      for await (const _ of s.generate([1, 2, 3], { maxTokens: 2 })) void _;
    };
    await expect(run()).rejects.toThrow(/^the logits at position 2 hold 64 NaN of 64 values/);
  });

  it('rollback and re-prefill give the logits of a fresh session', async () => {
    const a = await make();
    a.prefill([5, 6, 7, 8]);
    a.decode(9);
    a.rollback(2);
    expect(a.position).toBe(2);
    expect(a.history).toEqual([5, 6]);
    const again = a.prefill([10, 11]);
    const fresh = (await make()).prefill([5, 6, 10, 11]);
    expect(maxDiff(again, fresh)).toBeLessThan(1e-5);
  });

  it.each([
    ['js', jsBackend],
    ['wasm', createWasmBackend({ threads: 1 })],
  ] as const)('%s: a prompt longer than the batch goes in steps of it, with the logits of one step and a smaller plan', async (_name, backend) => {
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5];
    const whole = await Session.create(g, { backend, weights, batch: 64 });
    const steps = await Session.create(g, { backend, weights, batch: 4 });
    expect(steps.maxBatch).toBe(4);
    expect(maxDiff(steps.prefill(prompt), whole.prefill(prompt))).toBeLessThan(1e-5);
    expect(steps.history).toEqual(prompt);
    // 11 tokens = 4 + 4 + 3: three prefill steps, none of one token
    expect(steps.tokensComputed).toBe(11);
    const plan = (s: Session) => s.program.meta['memoryPlan'] as { arenaBytes: number; bounds: Record<string, number> };
    expect(plan(steps).bounds).toEqual({ pos: g.meta['llama'] ? (g.meta['llama'] as { maxSeqLen: number }).maxSeqLen : 0, seq: 4 });
    expect(plan(steps).arenaBytes).toBeLessThan(plan(whole).arenaBytes);
    // a step past the batch is refused by the program itself, not run past its plan
    expect(() => steps.executables.prefill.run({ inputs: { tokens: Int32Array.from(prompt) }, symbols: { seq: prompt.length, pos: 0 } })).toThrow(KilnError);
    await expect(Session.create(g, { backend, weights, batch: 0 })).rejects.toThrow(/batch must be a positive integer, got 0/);
  });

  it('refuses missing weights and a bad maxSeqLen at create, a second generate at once, and any step after dispose', async () => {
    const { ['blk.0.attn_q.weight']: _, ...partial } = weights;
    await expect(Session.create(g, { backend: jsBackend, weights: partial })).rejects.toThrow("session: no weights for 'blk.0.attn_q.weight'");
    await expect(Session.create(g, { backend: jsBackend, weights, maxSeqLen: 2.5 })).rejects.toThrow('session: maxSeqLen must be a positive integer, got 2.5');
    const { llama: __, ...meta } = g.meta;
    await expect(Session.create({ ...g, meta }, { backend: jsBackend, weights })).rejects.toThrow(/states no context length \(no LLaMA config\): give maxSeqLen to Session.create/);
    const s = await make();
    const a = s.generate([1, 2], { maxTokens: 3 });
    const b = s.generate([3, 4], { maxTokens: 3 });
    await a.next();
    await expect(b.next()).rejects.toThrow(/a generate\(\) is already running on this session/);
    for await (const _step of a) void _step; // a ends; the session is free again
    const again: number[] = [];
    for await (const step of s.generate([3, 4], { maxTokens: 2 })) again.push(step.token);
    expect(again).toHaveLength(2);
    s.dispose();
    expect(() => s.prefill([1])).toThrow('session: disposed');
    await expect(make().then((x) => x.prefill(['3' as unknown as number]))).rejects.toThrow('token "3" (a string, not a number) (at 0) is outside the vocabulary');
    expect(() => createWasmBackend({ threads: Number.NaN })).toThrow('wasm backend: threads must be a whole number from 1 to 64, got NaN');
  });

  it('runs a model whose tokens dim is not named seq (the plan bounds the tokens\' own symbol)', async () => {
    const renamed = parseGraph(stringifyGraph(g).replace(/\bseq\b/g, 'n'), 'renamed.json');
    expect(renamed.nodes[0]!.type.shape).toEqual([{ terms: { n: 1 }, offset: 0 }]);
    const s = await Session.create(renamed, { backend: jsBackend, weights, batch: 4 });
    expect((s.program.meta['memoryPlan'] as { bounds: Record<string, number> }).bounds['n']).toBe(4);
    const want = (await make()).prefill([1, 2, 3, 4, 5, 6]);
    expect(maxDiff(s.prefill([1, 2, 3, 4, 5, 6]), want)).toBeLessThan(1e-5);
  });

  it('decode one token at a time equals prefill of the whole sequence', async () => {
    const a = await make();
    a.prefill([1]);
    a.decode(2);
    const step = a.decode(3);
    const whole = (await make()).prefill([1, 2, 3]);
    expect(maxDiff(step, whole)).toBeLessThan(1e-5);
  });

  it('feed recomputes only from the first changed token', async () => {
    const s = await make();
    s.feed([1, 2, 3, 4, 5, 6]);
    expect(s.tokensComputed).toBe(6);
    const edited = s.feed([1, 2, 3, 4, 9, 10]); // the last two changed
    expect(s.tokensComputed).toBe(8);
    expect(s.history).toEqual([1, 2, 3, 4, 9, 10]);
    expect(maxDiff(edited, (await make()).prefill([1, 2, 3, 4, 9, 10]))).toBeLessThan(1e-5);
    expect(s.feed([1, 2, 3, 4, 9, 10])).toEqual(edited); // nothing new: nothing computed
    expect(s.tokensComputed).toBe(8);
    s.feed([1, 2, 3, 4, 9, 10, 11]); // appended: one token
    expect(s.tokensComputed).toBe(9);
    const shorter = s.feed([1, 2, 3]); // a prefix: its last token is recomputed for its logits
    expect(s.tokensComputed).toBe(10);
    expect(maxDiff(shorter, (await make()).prefill([1, 2, 3]))).toBeLessThan(1e-5);
  });

  it('a full context and out-of-vocabulary tokens are KilnErrors', async () => {
    const s = await make();
    s.prefill(Array.from({ length: 30 }, (_, i) => i));
    expect(() => s.prefill([1, 2, 3])).toThrow(/context is full: 30 tokens held \+ 3 new > maxSeqLen 32/);
    expect(() => s.decode(64)).toThrow(KilnError);
    expect(() => s.rollback(31)).toThrow(/cannot roll back/);
    await expect(async () => {
      for await (const _ of (await make()).generate([1, 2, 3], { maxTokens: 31 })) void _;
    }).rejects.toThrow(/need 33 positions; the context holds 32/);
  });

  it('generate streams tokens; a seed repeats them; stop tokens end it', async () => {
    const gen = async (opts: Parameters<Session['generate']>[1]) => {
      const s = await make();
      const out: number[] = [];
      for await (const step of s.generate([1, 2, 3], opts)) {
        expect(step.ms).toBeGreaterThanOrEqual(0);
        out.push(step.token);
      }
      return out;
    };
    const sampled = await gen({ maxTokens: 12, temperature: 0.9, topK: 10, seed: 7 });
    expect(sampled).toHaveLength(12);
    expect(await gen({ maxTokens: 12, temperature: 0.9, topK: 10, seed: 7 })).toEqual(sampled);
    expect(await gen({ maxTokens: 12, temperature: 0.9, topK: 10, seed: 8 })).not.toEqual(sampled);
    const greedy = await gen({ maxTokens: 10 });
    const stopAt = greedy[3]!;
    const stopped = await gen({ maxTokens: 10, stopTokens: [stopAt] });
    expect(stopped).toEqual(greedy.slice(0, greedy.indexOf(stopAt) + 1));
  });

  it('runs on the interpreter behind the same interface, with the same results', async () => {
    const a = (await make()).prefill([3, 1, 4, 1, 5]);
    const b = (await Session.create(g, { backend: interpretBackend, weights })).prefill([3, 1, 4, 1, 5]);
    expect(maxDiff(a, b)).toBeLessThan(1e-4);
  });
});
