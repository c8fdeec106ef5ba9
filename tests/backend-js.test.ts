import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Backend, type HostArray } from '../backends/backend.js';
import { checkBackend, conformanceCases, randomBindings } from '../backends/conformance.js';
import { jsBackend } from '../backends/js/index.js';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { presetModel } from '../src/dsl/presets.js';
import { conformanceSuite } from './conformance-suite.js';

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

describe.each(BACKENDS)('%s backend: conformance against the interpreter', (_name, backend, tol) => {
  conformanceSuite(backend, { tol, runs: { graphs: 150, fused: 100, llamas: 25 } });
});

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
    expect((err as KilnError).message).toBe("js backend: no kernel for fused pattern 'flash_attention' (%1); it has rope_qk, causal_softmax, swiglu, elementwise");
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
