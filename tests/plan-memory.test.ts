/**
 * plan-memory. The laws: no two buffers live at the same time share bytes, and running through
 * the planned arena — with every freed buffer poisoned with NaN — gives the interpreter's results.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { dimAdd, dimScale, evalDim, sym } from '../graph/dim.js';
import { InternalError, KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { type Bindings, interpret } from '../graph/interpret.js';
import { type HostTensor, hostTensor, maxRelError } from '../graph/tensor.js';
import { llama } from '../src/dsl/llama.js';
import { presetModel } from '../src/dsl/presets.js';
import { insertKvCacheGraph } from '../passes/insert-kv-cache.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { type MemoryPlan, checkNoOverlap, executePlanned, getMemoryPlan, planMemory, planMemoryGraph } from '../passes/plan-memory.js';
import { arbGraph } from './arbitrary.js';
import { mulberry32 } from './seeded-random.js';
import { arbTinyLlama, randomParams } from './tiny-llama.js';

const seq = sym('seq');
const pos = sym('pos');

function planned(g: Graph, maxSeqLen?: number): Graph {
  return planMemory.run(g, maxSeqLen === undefined ? {} : { maxSeqLen }).graph;
}

/** Random values for every source of `g` at the given symbols (i32 values 0 or 1, so gathers mostly stay in range). */
function bindAll(g: Graph, symbols: Record<string, number>, seed: number): Bindings {
  const u = mulberry32(seed);
  const b = { inputs: {} as Record<string, HostTensor>, params: {} as Record<string, HostTensor>, state: {} as Record<string, HostTensor>, symbols };
  const kind = { input: b.inputs, param: b.params, state: b.state } as Record<string, Record<string, HostTensor>>;
  for (const n of g.nodes) {
    const into = kind[n.op];
    if (!into) continue;
    const shape = n.type.shape.map((d) => evalDim(d, symbols));
    const size = shape.reduce((a, d) => a * d, 1);
    into[String(n.attrs['name'])] = hostTensor(n.type.dtype, shape, Array.from({ length: size }, () => (n.type.dtype === 'i32' ? Math.floor(2 * u()) : 4 * u() - 2)));
  }
  return b;
}

type Outcome = { ok: Record<string, HostTensor> } | { code: string };

function outcome(fn: () => Record<string, HostTensor>): Outcome {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof KilnError) return { code: e.code };
    throw e;
  }
}

/** The poisoned planned run equals the interpreter: the same values, or the same user error. */
function expectSameAsInterpreter(g: Graph, b: Bindings): void {
  const want = outcome(() => interpret(g, b));
  const got = outcome(() => executePlanned(g, b, { poison: true }));
  if ('code' in want) return expect(got).toEqual(want);
  expect('ok' in got).toBe(true);
  if (!('ok' in got)) return;
  for (const o of g.outputs) expect(maxRelError(got.ok[o.name]!, want.ok[o.name]!)).toBe(0);
}

describe('plan-memory: the laws', () => {
  it('on random graphs: live buffers are disjoint, and poisoned planned runs equal the interpreter', () => {
    fc.assert(
      fc.property(arbGraph({ maxNodes: 16 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.nat(), (g, s, p, seed) => {
        const pg = planned(g, 6);
        checkNoOverlap(getMemoryPlan(pg));
        expectSameAsInterpreter(pg, bindAll(pg, { seq: s, pos: p }, seed));
      }),
      { numRuns: 300 },
    );
  });

  it('on random tiny LLaMA step graphs, at any position', () => {
    fc.assert(
      fc.property(arbTinyLlama, fc.nat(), fc.nat(), fc.nat(), (c, seed, a, b) => {
        const step = insertKvCacheGraph(llama(c).build()).graph;
        const pg = planned(step);
        const plan = getMemoryPlan(pg);
        checkNoOverlap(plan);
        expect(plan.arenaBytes).toBeLessThan(plan.totalBytes);
        const n = 1 + (a % c.maxSeqLen);
        const at = b % (c.maxSeqLen - n + 1);
        const binds = bindAll(pg, { seq: n, pos: at }, seed);
        binds.inputs!['tokens'] = hostTensor('i32', [n], Array.from({ length: n }, (_, i) => (seed + i) % c.vocabSize));
        expectSameAsInterpreter(pg, { ...binds, params: randomParams(pg, seed) });
      }),
      { numRuns: 30 },
    );
  });

  it('on random tiny LLaMA step graphs planned for a batch (seq ≤ maxBatch), at any position', () => {
    fc.assert(
      fc.property(arbTinyLlama, fc.integer({ min: 1, max: 4 }), fc.nat(), fc.nat(), fc.nat(), (c, batch, seed, a, b) => {
        const step = insertKvCacheGraph(llama(c).build(), { maxBatch: batch }).graph;
        const pg = planned(step);
        const plan = getMemoryPlan(pg);
        checkNoOverlap(plan);
        expect(plan.bounds['seq']).toBe(Math.min(batch, c.maxSeqLen));
        expect(plan.arenaBytes).toBeLessThanOrEqual(getMemoryPlan(planned(insertKvCacheGraph(llama(c).build()).graph)).arenaBytes);
        const n = 1 + (a % Math.min(batch, c.maxSeqLen));
        const at = b % (c.maxSeqLen - n + 1);
        const binds = bindAll(pg, { seq: n, pos: at }, seed);
        binds.inputs!['tokens'] = hostTensor('i32', [n], Array.from({ length: n }, (_, i) => (seed + i) % c.vocabSize));
        expectSameAsInterpreter(pg, { ...binds, params: randomParams(pg, seed) });
      }),
      { numRuns: 30 },
    );
  });

  it('on the compiled tiny preset (fused kernels in the arena), decoding token by token', () => {
    const { graph } = runPipeline(presetModel('tiny').build(), PIPELINE);
    expect(graph.nodes.some((n) => n.op === 'fused')).toBe(true);
    checkNoOverlap(getMemoryPlan(graph));
    const params = randomParams(graph, 3);
    let state = bindAll(graph, { seq: 1, pos: 0 }, 3).state!;
    for (const [pos, n] of [[0, 3], [3, 1], [4, 2]] as const) {
      const b: Bindings = { inputs: { tokens: hostTensor('i32', [n], Array.from({ length: n }, (_, i) => (5 * pos + i) % 64)) }, params, state, symbols: { pos } };
      expectSameAsInterpreter(graph, b);
      const r = interpret(graph, b);
      state = Object.fromEntries(Object.keys(state).map((k) => [k, r[`state:${k}`]!]));
    }
  });

  it('planned again for one token (the js decode module): a smaller arena, right at every position', () => {
    const { graph } = runPipeline(presetModel('tiny').build(), PIPELINE);
    const full = getMemoryPlan(graph);
    const max = full.bounds['seq']!;
    const one = planMemoryGraph(graph, { maxSeqLen: max }, { seq: 1 });
    checkNoOverlap(one);
    expect(one.bounds).toEqual({ pos: max - 1, seq: 1 });
    expect(one.arenaBytes).toBeLessThan(full.arenaBytes / 4);
    const decode = { ...graph, meta: { ...graph.meta, memoryPlan: one } };
    for (const pos of [0, 7, max - 1]) expectSameAsInterpreter(decode, bindAll(decode, { seq: 1, pos }, pos + 1));
    // a plan made for seq = 1 is too small for a prompt: the planned run says so rather than overlap
    expect(() => executePlanned(decode, bindAll(decode, { seq: 4, pos: 0 }, 1), { poison: true })).toThrow();
  });

  it('can fail: a plan that puts every buffer at offset 0 is caught by both laws', () => {
    const g = planned(insertKvCacheGraph(presetModel('tiny').build()).graph);
    const plan = getMemoryPlan(g);
    const bad: MemoryPlan = { ...plan, buffers: plan.buffers.map((b) => ({ ...b, offset: 0 })) };
    expect(() => checkNoOverlap(bad)).toThrow(InternalError);
    expect(() => checkNoOverlap(bad)).toThrow(/share bytes/);
    const gb = { ...g, meta: { ...g.meta, memoryPlan: bad } };
    const b = { ...bindAll(g, { seq: 3, pos: 2 }, 7), params: randomParams(g, 7) };
    b.inputs!['tokens'] = hostTensor('i32', [3], [1, 2, 3]);
    const want = interpret(g, b)['logits']!;
    expect(maxRelError(executePlanned(g, b, { poison: true })['logits']!, want)).toBe(0);
    expect(maxRelError(executePlanned(gb, b, { poison: true })['logits']!, want)).toBeGreaterThan(1e-3);
  });
});

describe('plan-memory: the plan', () => {
  /** x → a → b → c → d (output): a and c never live together, so they share bytes. */
  function chain(): Graph {
    const g = new GraphBuilder('chain');
    const x = g.add('input', [], { name: 'x', dtype: 'f32', shape: [seq, 10] });
    const a = g.add('exp', [x]);
    const b = g.add('neg', [a]);
    const c = g.add('exp', [b]);
    g.output('d', g.add('neg', [c]));
    return g.build();
  }

  it('gives live ranges over the schedule and reuses freed bytes, 64-byte aligned', () => {
    const plan = planMemoryGraph(chain(), { maxSeqLen: 3 });
    expect(plan.bounds).toEqual({ seq: 3 });
    // 3·10 f32 = 120 bytes each; a and c share offset 0, b sits above at 128 (aligned).
    expect(plan.buffers).toEqual([
      { value: 1, offset: 0, bytes: 120, start: 1, end: 2 },
      { value: 2, offset: 128, bytes: 120, start: 2, end: 3 },
      { value: 3, offset: 0, bytes: 120, start: 3, end: 4 },
    ]);
    expect(plan.arenaBytes).toBe(256);
    expect(plan.totalBytes).toBe(360);
  });

  it('leaves out sources and outputs', () => {
    const g = new GraphBuilder('g');
    const x = g.add('input', [], { name: 'x', dtype: 'f32', shape: [4] });
    const w = g.add('param', [], { name: 'w', dtype: 'f32', shape: [4] });
    const k = g.add('const', [], { dtype: 'f32', shape: [], value: [2] });
    const s = g.add('state', [], { name: 's', dtype: 'f32', shape: [4] });
    const y = g.add('mul', [g.add('add', [x, w]), k]);
    g.output('y', y);
    g.output('s2', g.add('add', [s, y]));
    const plan = planMemoryGraph(g.build());
    expect(plan.buffers.map((b) => b.value)).toEqual([4]);
    expect(plan.bounds).toEqual({});
  });

  it('bounds sizes by maxSeqLen with pos + seq ≤ maxSeqLen', () => {
    const g = new GraphBuilder('g');
    const a = g.add('input', [], { name: 'a', dtype: 'f32', shape: [dimAdd(pos, seq)] });
    const b = g.add('input', [], { name: 'b', dtype: 'f32', shape: [dimScale(seq, 2)] });
    const c = g.add('input', [], { name: 'c', dtype: 'f32', shape: [dimAdd(seq, -1)] });
    g.output('o', g.add('add', [g.add('exp', [a]), g.add('sum', [g.add('add', [g.add('exp', [b]), g.add('sum', [g.add('exp', [c])], { axis: 0 })])], { axis: 0 })]));
    const plan = planMemoryGraph(g.build(), { maxSeqLen: 8 });
    expect(plan.bounds).toEqual({ pos: 8, seq: 8 });
    const bytes = Object.fromEntries(plan.buffers.map((x) => [x.value, x.bytes]));
    expect(bytes[3]).toBe(8 * 4); // exp(a): pos + seq ≤ 8
    expect(bytes[4]).toBe(16 * 4); // exp(b): 2·seq ≤ 16
    expect(bytes[5]).toBe(7 * 4); // exp(c): seq − 1 ≤ 7
  });

  it('bounds seq by maxBatch: pos + seq at (batch, max − batch) or (0, max), seq alone at batch', () => {
    const g = new GraphBuilder('g');
    const a = g.add('input', [], { name: 'a', dtype: 'f32', shape: [seq, dimAdd(pos, seq)] });
    const b = g.add('input', [], { name: 'b', dtype: 'f32', shape: [dimScale(seq, 2), dimAdd(pos, seq)] });
    g.output('o', g.add('add', [g.add('sum', [g.add('exp', [a])], { axis: 1 }), g.add('sum', [g.add('sum', [g.add('exp', [b])], { axis: 1 })], { axis: 0 })]));
    const plan = planMemoryGraph(g.build(), { maxSeqLen: 8, maxBatch: 3 });
    expect(plan.bounds).toEqual({ pos: 8, seq: 3 });
    const bytes = plan.buffers.map((x) => x.bytes);
    expect(bytes).toContain(3 * 8 * 4); // exp(a): seq ≤ 3 rows of pos + seq ≤ 8
    expect(bytes).toContain(6 * 8 * 4); // exp(b): 2·seq ≤ 6 rows
    // a batch past maxSeqLen is maxSeqLen
    expect(planMemoryGraph(g.build(), { maxSeqLen: 8, maxBatch: 100 }).bounds).toEqual({ pos: 8, seq: 8 });
  });

  it('is stored as meta.memoryPlan, with stats', () => {
    const r = planMemory.run(chain(), { maxSeqLen: 3 });
    expect(getMemoryPlan(r.graph)).toEqual(planMemoryGraph(chain(), { maxSeqLen: 3 }));
    expect(r.stats).toEqual({ arenaBytes: 256, totalBytes: 360, buffers: 3 });
  });

  it('takes maxSeqLen from meta.llama, then meta.kvCache', () => {
    const g = chain();
    expect(planMemoryGraph({ ...g, meta: { llama: { maxSeqLen: 2 } } }).bounds).toEqual({ seq: 2 });
    expect(planMemoryGraph({ ...g, meta: { kvCache: { maxSeqLen: 5, states: [] } } }).bounds).toEqual({ seq: 5 });
  });

  it('on the stories15M step graph, the arena is a fraction of the sum of the buffers', () => {
    const step = insertKvCacheGraph(presetModel('stories15M').build()).graph;
    const plan = planMemoryGraph(step);
    checkNoOverlap(plan);
    expect(plan.bounds).toEqual({ pos: 256, seq: 256 });
    // The largest buffer, the scores [heads, seq, pos + seq] = 6·256·256 f32, bounds the arena from below.
    expect(Math.max(...plan.buffers.map((b) => b.bytes))).toBe(6 * 256 * 256 * 4);
    expect(plan.arenaBytes).toBeLessThan(plan.totalBytes / 10);
  });
});

describe('plan-memory: errors', () => {
  it('a symbol it cannot bound', () => {
    const g = new GraphBuilder('g');
    g.output('y', g.add('exp', [g.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('batch')] })]));
    const e = (() => {
      try {
        planMemoryGraph(g.build(), { maxSeqLen: 4 });
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).code).toBe('K1018');
    expect((e as KilnError).message).toBe("plan-memory: graph g: cannot bound the dim symbol 'batch' (only seq, the tokens' dim, and pos have a limit, maxSeqLen)");
  });

  it('symbols without maxSeqLen', () => {
    const g = new GraphBuilder('g');
    g.output('y', g.add('exp', [g.add('input', [], { name: 'x', dtype: 'f32', shape: [seq] })]));
    expect(() => planMemoryGraph(g.build())).toThrow(/has symbolic sizes \(seq\) but no maxSeqLen/);
  });

  it('asking for a plan that was never made', () => {
    expect(() => getMemoryPlan(presetModel('tiny').build())).toThrow(InternalError);
  });
});
