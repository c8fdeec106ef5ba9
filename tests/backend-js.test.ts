import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Backend, type HostArray } from '../backends/backend.js';
import { checkBackend, conformanceCases, randomBindings } from '../backends/conformance.js';
import { jsBackend } from '../backends/js/index.js';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import { OPS, type OpKind } from '../graph/ops.js';
import { hostTensor, maxRelError } from '../graph/tensor.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { llama } from '../src/dsl/llama.js';
import { presetModel } from '../src/dsl/presets.js';
import { arbGraph } from './arbitrary.js';
import { arbTinyLlama } from './tiny-llama.js';

/**
 * Tolerances, per backend.
 * - End to end, relative 1e-4 with floor 1e-2 (checkBackend's default): the interpreter is
 *   float64, a backend stores every intermediate in f32 (relative rounding 6e-8 each). Values
 *   are O(1) (inputs in [−1, 1), weights scaled by 1/√fan-in), so a result that cancels to near
 *   zero — a dot product over K in the hundreds (K = 783 here), a logit — carries an absolute
 *   error at the scale of its terms: a few 1e-8 after a dozen roundings (measured: up to 4e-8 on
 *   the tiny LLaMA). Below the floor errors count as absolute, so 1e-4 there means 1e-6 absolute:
 *   ~25× margin over what rounding does, while any indexing or formula mistake is an O(1) error.
 * - Per node, 1e-5 with floor 1e-6: the js kernels compute each node in doubles from the same
 *   f32 operands with the interpreter's formulas and summation order, so a node differs from the
 *   interpreter by its final rounding to f32 only (≤ 6e-8); 1e-5 allows for a reordered sum.
 */
interface Tolerance {
  readonly rel: number;
  readonly perNode: number;
}
const BACKENDS: [string, Backend, Tolerance][] = [['js', jsBackend, { rel: 1e-4, perNode: 1e-5 }]];

const CASES = conformanceCases();
const SEEDS = [1, 2];

describe.each(BACKENDS)('%s backend: conformance against the interpreter', (_name, backend, tol) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of SEEDS) {
      const r = await checkBackend(backend, c.graph, { seed, ...(c.symbols ? { symbols: c.symbols } : {}) });
      expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
      const p = await checkBackend(backend, c.graph, { seed, perNode: true, tolerance: tol.perNode, ...(c.symbols ? { symbols: c.symbols } : {}) });
      expect(p.maxRelError, p.summary).toBeLessThanOrEqual(tol.perNode);
    }
  });

  it('the cases cover every core op and every fused pattern the backend has', () => {
    const ops = new Set(CASES.flatMap((c) => c.graph.nodes.map((n) => n.op)));
    const missing = (Object.keys(OPS) as OpKind[]).filter((op) => !ops.has(op));
    expect(missing).toEqual([]);
    const patterns = new Set(CASES.flatMap((c) => c.graph.nodes.filter((n) => n.op === 'fused').map((n) => String(n.attrs['pattern']))));
    expect([...patterns].sort()).toEqual([...backend.caps.fusedPatterns].sort());
  });

  it('random graphs (arbGraph): every node agrees with the interpreter', async () => {
    const noFused = (Object.keys(OPS) as OpKind[]).filter((op) => op !== 'fused');
    await fc.assert(
      fc.asyncProperty(arbGraph({ ops: noFused }), fc.nat(), async (g, seed) => {
        const r = await checkBackend(backend, g, { seed, perNode: true, tolerance: tol.perNode });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.perNode);
      }),
      { numRuns: 150 },
    );
  });

  it('random graphs with fused nodes of every known pattern (bodies of any form)', async () => {
    const patterns = backend.caps.fusedPatterns;
    const withKnownPatterns = (g: Graph): Graph => ({
      ...g,
      nodes: g.nodes.map((n) => (n.op === 'fused' ? { ...n, attrs: { ...n.attrs, pattern: patterns[n.id % patterns.length]! } } : n)),
    });
    await fc.assert(
      fc.asyncProperty(arbGraph({ ops: ['fused', 'add', 'mul', 'exp', 'matmul', 'rope', 'transpose', 'reshape'] }).map(withKnownPatterns), fc.nat(), async (g, seed) => {
        const r = await checkBackend(backend, g, { seed, perNode: true, tolerance: tol.perNode });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.perNode);
      }),
      { numRuns: 100 },
    );
  });

  it('the tiny LLaMA graph, before the pipeline', async () => {
    const g = presetModel('tiny').build();
    for (const seed of SEEDS) {
      const r = await checkBackend(backend, g, { seed, symbols: { seq: 5 } });
      expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
      const p = await checkBackend(backend, g, { seed, symbols: { seq: 5 }, perNode: true, tolerance: tol.perNode });
      expect(p.maxRelError, p.summary).toBeLessThanOrEqual(tol.perNode);
    }
  });

  it('the tiny LLaMA graph after the pipeline: fused, cached, planned', async () => {
    const step = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
    expect(step.nodes.filter((n) => n.op === 'fused').map((n) => n.attrs['pattern'])).toEqual(expect.arrayContaining(['rope_qk', 'swiglu']));
    expect(step.meta['memoryPlan']).toBeDefined();
    for (const [seed, symbols] of [
      [1, { seq: 5, pos: 0 }],
      [2, { seq: 3, pos: 7 }],
      [3, { seq: 1, pos: 20 }],
    ] as const) {
      const r = await checkBackend(backend, step, { seed, symbols });
      expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
      const p = await checkBackend(backend, step, { seed, symbols, perNode: true, tolerance: tol.perNode });
      expect(p.maxRelError, p.summary).toBeLessThanOrEqual(tol.perNode);
    }
  });

  it('random tiny LLaMA variants, before and after the pipeline', async () => {
    await fc.assert(
      fc.asyncProperty(arbTinyLlama, fc.nat(), async (config, seed) => {
        const full = llama(config).build();
        const step = runPipeline(full, PIPELINE).graph;
        for (const g of [full, step]) {
          const r = await checkBackend(backend, g, { seed });
          expect(r.maxRelError, `${r.summary}; config ${JSON.stringify(config)}`).toBeLessThanOrEqual(tol.rel);
        }
        const p = await checkBackend(backend, step, { seed, perNode: true, tolerance: tol.perNode });
        expect(p.maxRelError, `${p.summary}; config ${JSON.stringify(config)}`).toBeLessThanOrEqual(tol.perNode);
      }),
      { numRuns: 25 },
    );
  });

  it('prefill then decode steps (the decode program specialised to seq = 1) give the full pass logits', async () => {
    const full = presetModel('tiny').build();
    const step = runPipeline(full, PIPELINE).graph;
    const prefill = await backend.compile(step);
    const decode = await backend.compile(step, { specialize: { seq: 1 } });
    const seed = 7;
    const weights = randomBindings(full, seed, { seq: 1 }).param;
    prefill.setWeights(weights);
    decode.setWeights(weights);
    const tokens = [3, 14, 15, 9, 2, 6, 53, 5];
    const ref = interpret(full, {
      inputs: { tokens: hostTensor('i32', [tokens.length], tokens) },
      params: Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, hostTensor('f32', shapeOf(full, k), w)])),
    })['logits']!;
    const meta = step.meta['kvCache'] as { maxSeqLen: number; states: string[] };
    let state: Record<string, HostArray> = Object.fromEntries(meta.states.map((s) => [s, new Float32Array(meta.maxSeqLen * 2 * 8)]));
    const rows: Float32Array[] = [];
    const first = 5;
    const out0 = prefill.run({ inputs: { tokens: Int32Array.from(tokens.slice(0, first)) }, symbols: { pos: 0 }, state });
    rows.push(out0['logits'] as Float32Array);
    state = Object.fromEntries(meta.states.map((s) => [s, out0[`state:${s}`]!]));
    for (let p = first; p < tokens.length; p++) {
      const out = decode.run({ inputs: { tokens: Int32Array.of(tokens[p]!) }, symbols: { pos: p }, state });
      rows.push(out['logits'] as Float32Array);
      state = Object.fromEntries(meta.states.map((s) => [s, out[`state:${s}`]!]));
    }
    const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    rows.reduce((at, r) => (got.set(r, at), at + r.length), 0);
    const err = maxRelError(hostTensor('f32', ref.shape, got), ref, 1e-2);
    expect(err, `seed ${seed}`).toBeLessThanOrEqual(tol.rel);
  });
});

function shapeOf(g: Graph, param: string): number[] {
  return g.nodes.find((n) => n.op === 'param' && n.attrs['name'] === param)!.type.shape as number[];
}

// ---------------------------------------------------------------------------------------------
// js specifics

function stateGraph(): Graph {
  const b = new GraphBuilder('step');
  const cache = b.add('state', [], { name: 'cache', dtype: 'f32', shape: [6, 2] });
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 2] });
  const upd = b.add('update_slice', [cache, x], { axis: 0, start: sym('pos') });
  b.output('y', b.add('sum', [upd], { axis: 0 }));
  b.output('state:cache', upd);
  return b.build();
}

describe('checkBackend', () => {
  /** The js backend with one node's value (and, end to end, one output) off by a little. */
  const skewed = (id: number): Backend => ({
    ...jsBackend,
    name: 'skewed',
    async compile(g, opts) {
      const exe = await jsBackend.compile(g, opts);
      const skew = (a: HostArray) => (a[0] = a[0]! * 1.01 + 0.01);
      return {
        ...exe,
        run: (args) => {
          const out = exe.run(args);
          Object.values(out).forEach(skew);
          return out;
        },
        runDebug: (args) => {
          const r = exe.runDebug!(args);
          skew(r.values.get(id)!);
          return r;
        },
      };
    },
  });

  it('finds a wrong value end to end and names the first wrong node per node', async () => {
    const c = CASES.find((k) => k.name === 'softmax axis -1 [3, 50]')!;
    const e2e = await checkBackend(skewed(1), c.graph, { seed: 5 });
    expect(e2e.maxRelError).toBeGreaterThan(1e-3);
    expect(e2e.summary).toMatch(/^skewed on graph softmax axis -1 \[3, 50\], seed 5, symbols \{\}: max relative error .* at output 'y'$/);
    const local = await checkBackend(skewed(1), c.graph, { seed: 5, perNode: true, tolerance: 1e-5 });
    expect(local.maxRelError).toBeGreaterThan(1e-3);
    expect(local.firstBad).toBe('%1 softmax');
  });

  it('counts a run that both reject with the same code as agreement', async () => {
    const b = new GraphBuilder('g');
    const ids = b.add('input', [], { name: 'ids', dtype: 'i32', shape: [2] });
    const table = b.add('param', [], { name: 't', dtype: 'f32', shape: [3, 2] });
    // indices in −3…3 shifted by 50: always out of range
    const shifted = b.add('add', [ids, b.add('const', [], { dtype: 'i32', shape: [], value: [50] })]);
    b.output('y', b.add('gather', [table, shifted]));
    const r = await checkBackend(jsBackend, b.build(), { seed: 1 });
    expect(r.maxRelError).toBe(0);
    expect(r.worst).toBe('both rejected the run (K1017)');
  });
});

describe('js backend', () => {
  it('emits a module that runs on its own, giving what the executable gives', async () => {
    const g = presetModel('tiny').build();
    const exe = await jsBackend.compile(g);
    expect(exe.source).toMatch(/^\/\*\n \* kiln — generated by the js backend/);
    expect(exe.source).toContain('Usage:');
    expect(exe.source).toContain('export { createModel };');
    const dir = mkdtempSync(join(tmpdir(), 'kiln-js-'));
    try {
      const file = join(dir, 'tiny.mjs');
      writeFileSync(file, exe.source!);
      const mod = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as { createModel: () => { setWeights: (w: object) => void; run: (a: object) => Record<string, Float32Array> } };
      const model = mod.createModel();
      const data = randomBindings(g, 3, { seq: 4 });
      model.setWeights(data.param);
      exe.setWeights(data.param);
      const args = { inputs: data.input, symbols: { seq: 4 } };
      expect(model.run(args)['logits']).toEqual(exe.run(args)['logits']);
      // Standalone, errors are plain Errors that carry the code.
      expect(() => model.run({ inputs: {}, symbols: { seq: 4 } })).toThrow(/no value given for input 'tokens'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads seq off the input when symbols leave it out', async () => {
    const g = presetModel('tiny').build();
    const exe = await jsBackend.compile(g);
    const data = randomBindings(g, 1, { seq: 3 });
    exe.setWeights(data.param);
    expect(exe.run({ inputs: data.input, symbols: {} })['logits']!.length).toBe(3 * 64);
  });

  it('an unknown fused pattern or a missing kernel is a compile error naming the op and the backend', async () => {
    const b = new GraphBuilder('g');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3] });
    const body = new GraphBuilder('body');
    body.output('out', body.add('exp', [body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [3] })]));
    b.output('y', b.add('fused', [x], { pattern: 'flash_attention', body: body.build() as never }));
    const err = await jsBackend.compile(b.build()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('K1019');
    expect((err as KilnError).message).toBe("js backend: no kernel for fused pattern 'flash_attention' (%1); it has rope_qk, swiglu, elementwise");
  });

  it('a known pattern with a body of another form runs its decomposition, and says so', async () => {
    const c = CASES.find((k) => k.name.startsWith('fused rope_qk, a body of another form'))!;
    const exe = await jsBackend.compile(c.graph);
    expect(exe.source).toMatch(/Note: %\d+ fused rope_qk: its body is not in the form the js kernel reads; it runs as its decomposition/);
  });

  it('setWeights checks names, array kinds and sizes (K1017 naming the param and its shape)', async () => {
    const g = presetModel('tiny').build();
    const exe = await jsBackend.compile(g);
    const w = randomBindings(g, 1, { seq: 1 }).param;
    const fails = (ws: Record<string, unknown>) => {
      try {
        exe.setWeights(ws as Record<string, Float32Array>);
      } catch (e) {
        expect(e).toBeInstanceOf(KilnError);
        expect((e as KilnError).code).toBe('K1017');
        return (e as KilnError).message;
      }
      throw new Error('setWeights accepted bad weights');
    };
    expect(fails({ ...w, 'blk.0.attn_q.weight': new Float32Array(10) })).toBe("param 'blk.0.attn_q.weight': expected 1024 values for f32[32, 32], given 10");
    expect(fails({ 'blk.0.attn_q.weight': new Float64Array(1024) })).toBe("param 'blk.0.attn_q.weight': expected a Float32Array for f32[32, 32], given Float64Array");
    expect(fails({ 'blk.0.attn_q': new Float32Array(1024) })).toMatch(/^unknown param 'blk\.0\.attn_q'; this model's params are 'token_embd\.weight', /);
    exe.setWeights({ 'token_embd.weight': w['token_embd.weight']! });
    expect(() => exe.run({ inputs: { tokens: Int32Array.of(1) }, symbols: {} })).toThrow(/weights not bound: 'blk\.0\.attn_norm\.weight'/);
  });

  it('run checks inputs, state and symbols', async () => {
    const exe = await jsBackend.compile(stateGraph());
    exe.setWeights({});
    const state = { cache: new Float32Array(12) };
    expect(() => exe.run({ inputs: { x: new Float32Array(3) }, symbols: { seq: 2, pos: 0 }, state })).toThrow("input 'x': expected 4 values for f32[seq, 2] = [2, 2], given 3");
    expect(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2 }, state })).toThrow("no value for dim symbol 'pos' (pass it in symbols)");
    expect(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2, pos: 5 }, state })).toThrow('[5, 7) is outside axis 0 of size 6');
    expect(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2, pos: 0 } })).toThrow("no value given for state 'cache' (f32[6, 2])");
    // a static slice that starts before 0 passes the shape rule; it is refused when run, as the interpreter does
    const b = new GraphBuilder('g');
    b.output('y', b.add('slice', [b.add('input', [], { name: 'x', dtype: 'f32', shape: [4] })], { axis: 0, start: -1, end: 2 }));
    const bad = await jsBackend.compile(b.build());
    bad.setWeights({});
    expect(() => bad.run({ inputs: { x: new Float32Array(4) }, symbols: {} })).toThrow('%1 slice: [-1, 2) is outside axis 0 of size 4');
  });

  it('update_slice of a state writes in place: the state output is the caller buffer', async () => {
    const exe = await jsBackend.compile(stateGraph());
    exe.setWeights({});
    const cache = new Float32Array(12);
    const out = exe.run({ inputs: { x: Float32Array.of(1, 2, 3, 4) }, symbols: { seq: 2, pos: 1 }, state: { cache } });
    expect(out['state:cache']).toBe(cache);
    expect([...cache]).toEqual([0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
    expect([...(out['y'] as Float32Array)]).toEqual([4, 6]);
  });

  it('specialize fixes a symbol: numbers in the loops, and a run with another value is refused', async () => {
    const exe = await jsBackend.compile(stateGraph(), { specialize: { seq: 1 } });
    expect(exe.source).not.toMatch(/\bconst seq\b/);
    exe.setWeights({});
    expect(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2, pos: 0 }, state: { cache: new Float32Array(12) } })).toThrow(
      'this program is compiled for seq = 1, given seq = 2',
    );
    const out = exe.run({ inputs: { x: Float32Array.of(5, 6) }, symbols: { pos: 3 }, state: { cache: new Float32Array(12) } });
    expect([...(out['y'] as Float32Array)]).toEqual([5, 6]);
  });

  it('debugValues: runDebug returns every node value by id', async () => {
    const g = stateGraph();
    const exe = await jsBackend.compile(g, { debugValues: true });
    exe.setWeights({});
    const { outputs, values } = exe.runDebug!({ inputs: { x: Float32Array.of(1, 2) }, symbols: { seq: 1, pos: 0 }, state: { cache: new Float32Array(12).fill(1) } });
    expect([...values.keys()].sort()).toEqual(g.nodes.map((n) => n.id).sort());
    // the state node's value is the state before the update
    expect([...values.get(0)!]).toEqual(new Array(12).fill(1));
    expect(outputs['y']).toEqual(values.get(3));
    expect((await jsBackend.compile(g)).runDebug).toBeUndefined();
  });

  it('uses the memory plan: intermediates live in one arena', async () => {
    const step = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
    const exe = await jsBackend.compile(step);
    const plan = step.meta['memoryPlan'] as { arenaBytes: number };
    expect(exe.source).toContain(`const _arena = new ArrayBuffer(${plan.arenaBytes});`);
    expect(exe.source).not.toMatch(/Note: %\d+: not placed in the arena/);
    expect(exe.source).not.toMatch(/runs as its decomposition/);
  });
});
