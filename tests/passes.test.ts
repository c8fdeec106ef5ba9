import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import type { Graph } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import type { OpKind } from '../graph/ops.js';
import { validate } from '../graph/validate.js';
import { MAX_FOLD_ELEMENTS, constantFold } from '../passes/constant-fold.js';
import { cse } from '../passes/cse.js';
import { dce } from '../passes/dce.js';
import type { Pass } from '../passes/pass.js';
import { arbGraph } from './arbitrary.js';
import { arbTinyLlama, outputError, randomBindings, tinyLlamaCase } from './pass-laws.js';

const CLEANUPS: readonly Pass[] = [constantFold, cse, dce];

/** Ops that make folding and merging likely: consts, iotas and cheap math on them. */
const CONSTY: OpKind[] = ['const', 'const', 'iota', 'add', 'mul', 'neg', 'exp', 'sum', 'reshape', 'transpose', 'broadcast', 'slice', 'concat', 'matmul', 'gather', 'softmax', 'input', 'param'];

const arbSymbols = fc.record({ seq: fc.integer({ min: 1, max: 3 }), pos: fc.integer({ min: 1, max: 3 }) });

describe.each(CLEANUPS.map((p) => [p.name, p] as const))('%s keeps the outputs', (_, pass) => {
  it.each([
    ['random graphs', {}],
    ['random graphs rich in constants', { ops: CONSTY }],
  ] as const)('on %s (relative error ≤ 1e-12)', (_, opts) => {
    let checked = 0;
    fc.assert(
      fc.property(arbGraph(opts), arbSymbols, fc.nat(), (g, symbols, seed) => {
        const out = pass.run(g, {}).graph;
        validate(out);
        const err = outputError(g, out, randomBindings(g, seed, symbols));
        if (err !== undefined) checked++;
        expect(err ?? 0).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 200 },
    );
    // Most random graphs run; a law checked on none would prove nothing.
    expect(checked).toBeGreaterThan(100);
  });

  it('on random tiny LLaMA variants', () => {
    fc.assert(
      fc.property(arbTinyLlama(), (t) => {
        const { graph, bindings } = tinyLlamaCase(t);
        const out = pass.run(graph, {}).graph;
        validate(out);
        expect(outputError(graph, out, bindings)).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 15 },
    );
  });
});

describe('the clean-ups fire', () => {
  it('fold, merge and drop on random graphs rich in constants', () => {
    const totals = { folded: 0, merged: 0, removed: 0 };
    for (const g of fc.sample(arbGraph({ ops: CONSTY }), { numRuns: 100, seed: 7 })) {
      totals.folded += constantFold.run(g, {}).stats['folded'] as number;
      totals.merged += cse.run(g, {}).stats['merged'] as number;
      totals.removed += dce.run(g, {}).stats['removed'] as number;
    }
    expect(totals.folded).toBeGreaterThan(20);
    expect(totals.merged).toBeGreaterThan(5);
    expect(totals.removed).toBeGreaterThan(20);
  });

  it('cse merges the per-layer scale constants of a LLaMA graph', () => {
    fc.assert(
      fc.property(arbTinyLlama(), (t) => {
        const { graph } = tinyLlamaCase(t);
        const { graph: out, stats } = cse.run(graph, {});
        const scale = 1 / Math.sqrt(t.config.dim / t.config.nHeads);
        const scales = (g: Graph) => g.nodes.filter((n) => n.op === 'const' && (n.attrs['value'] as number[])[0] === scale);
        expect(scales(graph).filter((n) => n.scope.endsWith('attn.scores'))).toHaveLength(t.config.nLayers);
        expect(scales(out)).toHaveLength(1);
        expect(stats['merged']).toBeGreaterThanOrEqual(t.config.nLayers - 1);
      }),
      { numRuns: 10 },
    );
  });
});

/** x[seq, 4] and a few constants: (2 + 3) · iota, and x · that. */
function foldable(): Graph {
  const b = new GraphBuilder('fold');
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 4] });
  const two = b.add('const', [], { dtype: 'f32', shape: [], value: [2] });
  const three = b.add('const', [], { dtype: 'f32', shape: [], value: [3] });
  const five = b.add('add', [two, three]);
  const ramp = b.add('iota', [], { dtype: 'f32', shape: [4], axis: 0, start: 0 });
  const scaled = b.add('mul', [five, ramp]);
  const y = b.add('mul', [x, scaled]);
  const big = b.add('iota', [], { dtype: 'f32', shape: [MAX_FOLD_ELEMENTS + 1], axis: 0, start: 0 });
  const atPos = b.add('iota', [], { dtype: 'f32', shape: [4], axis: 0, start: sym('pos') });
  b.output('y', y);
  b.output('big', b.add('neg', [big]));
  b.output('atPos', b.add('neg', [atPos]));
  return b.build();
}

describe('constant-fold', () => {
  it('replaces constant subtrees by consts, splatting a uniform value', () => {
    const { graph, stats } = constantFold.run(foldable(), {});
    const out = dce.run(graph, {}).graph;
    expect(stats['folded']).toBe(3); // 2 + 3, the small iota, 5 · iota
    const consts = out.nodes.filter((n) => n.op === 'const').map((n) => n.attrs['value']);
    expect(consts).toEqual([[0, 5, 10, 15]]);
    const y = out.nodes[out.outputs[0]!.value]!;
    expect(y.op).toBe('mul');
    expect(out.nodes[y.inputs[1]!]!.op).toBe('const');
    const five = constantFold.run(foldable(), {}).graph.nodes.find((n) => n.op === 'const' && n.scope === '' && (n.attrs['value'] as number[])[0] === 5);
    expect(five?.attrs['value']).toEqual([5]);
  });

  it('leaves large results and values that depend on a dim symbol alone', () => {
    const out = constantFold.run(foldable(), {}).graph;
    expect(out.nodes.filter((n) => n.op === 'iota').map((n) => String(n.type.shape))).toEqual([String(MAX_FOLD_ELEMENTS + 1), '4']);
    expect(out.nodes.filter((n) => n.op === 'neg')).toHaveLength(2);
  });

  it('leaves a node whose evaluation fails for run time', () => {
    const b = new GraphBuilder('bad-gather');
    const table = b.add('const', [], { dtype: 'f32', shape: [2, 2], value: [1, 2, 3, 4] });
    const idx = b.add('const', [], { dtype: 'i32', shape: [1], value: [5] });
    b.output('y', b.add('gather', [table, idx]));
    const { graph, stats } = constantFold.run(b.build(), {});
    expect(stats['folded']).toBe(0);
    expect(graph.nodes.map((n) => n.op)).toEqual(['const', 'const', 'gather']);
    expect(() => interpret(graph, {})).toThrow(/index 5 at position 0 is outside \[0, 2\)/);
  });
});

describe('cse', () => {
  it('merges equal nodes and consts (NaN equal to NaN, −0 not +0), never sources of different names', () => {
    const b = new GraphBuilder('cse');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [4] });
    const y = b.add('input', [], { name: 'y', dtype: 'f32', shape: [4] });
    const p = b.add('param', [], { name: 'p', dtype: 'f32', shape: [4] });
    const q = b.add('param', [], { name: 'q', dtype: 'f32', shape: [4] });
    const nan1 = b.add('const', [], { dtype: 'f32', shape: [], value: [NaN] });
    const nan2 = b.add('const', [], { dtype: 'f32', shape: [], value: [NaN] });
    const zero = b.add('const', [], { dtype: 'f32', shape: [], value: [0] });
    const negZero = b.add('const', [], { dtype: 'f32', shape: [], value: [-0] });
    const e1 = b.add('exp', [x]);
    const e2 = b.add('exp', [x]);
    const s1 = b.add('add', [e1, nan1]);
    const s2 = b.add('add', [e2, nan2]);
    const t1 = b.add('softmax', [s1], { axis: 0 });
    const t2 = b.add('softmax', [s2], { axis: -1 });
    const outs = [s1, s2, t1, t2, y, p, q, zero, negZero];
    outs.forEach((v, k) => b.output(`o${k}`, v));
    const { graph, stats } = cse.run(b.build(), {});
    expect(stats['merged']).toBe(3); // NaN, exp, add; softmax axes 0 and −1 are spelled differently
    const o = (k: number) => graph.outputs[k]!.value;
    expect(o(0)).toBe(o(1));
    expect(o(2)).not.toBe(o(3));
    expect(new Set([o(4), o(5), o(6), o(7), o(8)]).size).toBe(5);
    expect(graph.nodes.filter((n) => n.op === 'input' || n.op === 'param')).toHaveLength(4);
  });

  it('compares fused bodies by structure', () => {
    const body = (op: 'exp' | 'neg') => {
      const b = new GraphBuilder('body');
      b.output('out', b.add(op, [b.add('input', [], { name: 'arg0', dtype: 'f32', shape: [2] })]));
      return b.build();
    };
    const b = new GraphBuilder('fused');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [2] });
    b.output('a', b.add('fused', [x], { pattern: 'elementwise', body: body('exp') }));
    b.output('b', b.add('fused', [x], { pattern: 'elementwise', body: body('exp') }));
    b.output('c', b.add('fused', [x], { pattern: 'elementwise', body: body('neg') }));
    const { stats } = cse.run(b.build(), {});
    expect(stats['merged']).toBe(1);
  });
});

describe('dce', () => {
  it('drops what no output reaches but keeps inputs and state', () => {
    const b = new GraphBuilder('dce');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [2] });
    b.add('input', [], { name: 'unused', dtype: 'f32', shape: [2] });
    b.add('state', [], { name: 'cache', dtype: 'f32', shape: [2] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [2] });
    b.add('exp', [b.add('mul', [x, w])]);
    b.output('y', b.add('neg', [x]));
    const { graph, stats } = dce.run(b.build(), {});
    expect(stats['removed']).toBe(3);
    expect(graph.nodes.map((n) => `${n.id}:${n.op}`)).toEqual(['0:input', '1:input', '2:state', '3:neg']);
    expect(graph.outputs).toEqual([{ name: 'y', value: 3 }]);
  });
});
