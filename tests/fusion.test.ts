import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import type { Graph } from '../graph/graph.js';
import type { FusedBody } from '../graph/ops.js';
import { validate } from '../graph/validate.js';
import { causalSoftmaxForm } from '../backends/js/kernels/fused-causal-softmax.js';
import { CAUSAL_SOFTMAX, fuseCausalSoftmax } from '../passes/fuse-causal-softmax.js';
import { ELEMENTWISE, fuseElementwise } from '../passes/fuse-elementwise.js';
import { ROPE_QK, fuseRopeQk, ropeQkParts } from '../passes/fuse-rope-qk.js';
import { SWIGLU, fuseSwiglu } from '../passes/fuse-swiglu.js';
import { insertKvCache } from '../passes/insert-kv-cache.js';
import type { Pass } from '../passes/pass.js';
import { countFused } from '../passes/rewrite.js';
import { arbGraph } from './arbitrary.js';
import { type TinyLlama, arbTinyLlama, outputError, randomBindings, tinyLlamaCase } from './pass-laws.js';

/** How many fused nodes each fusion must make on a LLaMA graph, run on its own. */
const EXPECTED: Record<string, (t: TinyLlama) => number> = {
  [ROPE_QK]: (t) => t.config.nLayers,
  [SWIGLU]: (t) => (t.activation === 'swiglu' ? t.config.nLayers : 0),
  [CAUSAL_SOFTMAX]: (t) => t.config.nLayers,
  // Gated FFNs and squared ReLU leave act·up (or r·r) as a chain; each LayerNorm leaves two
  // chains (var + eps → rsqrt, and the normalise-scale-shift); the rest are single ops.
  [ELEMENTWISE]: (t) =>
    (['swiglu', 'geglu', 'relu2', 'custom'].includes(t.activation) ? t.config.nLayers : 0) + (t.config.norm === 'layer' ? 2 * (2 * t.config.nLayers + 1) : 0),
};

const FUSIONS: readonly (readonly [string, Pass])[] = [
  [ROPE_QK, fuseRopeQk],
  [SWIGLU, fuseSwiglu],
  [CAUSAL_SOFTMAX, fuseCausalSoftmax],
  [ELEMENTWISE, fuseElementwise],
];

const arbSymbols = fc.record({ seq: fc.integer({ min: 1, max: 3 }), pos: fc.integer({ min: 1, max: 3 }) });

describe.each(FUSIONS)('%s', (pattern, pass) => {
  it('keeps the outputs of random graphs (relative error ≤ 1e-12)', () => {
    let checked = 0;
    fc.assert(
      fc.property(arbGraph(), arbSymbols, fc.nat(), (g, symbols, seed) => {
        const out = pass.run(g, {}).graph;
        validate(out);
        const err = outputError(g, out, randomBindings(g, seed, symbols));
        if (err !== undefined) checked++;
        expect(err ?? 0).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 200 },
    );
    expect(checked).toBeGreaterThan(100);
  });

  it('fires on random tiny LLaMA variants, validates, and keeps the logits', () => {
    fc.assert(
      fc.property(arbTinyLlama(), (t) => {
        const { graph, bindings } = tinyLlamaCase(t);
        const { graph: out, stats } = pass.run(graph, {});
        validate(out);
        expect(countFused(out, pattern)).toBe(EXPECTED[pattern]!(t));
        expect(stats['fused']).toBe(EXPECTED[pattern]!(t));
        expect(outputError(graph, out, bindings)).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 25 },
    );
  });

  it('is idempotent: a second run finds nothing more', () => {
    fc.assert(
      fc.property(arbTinyLlama(), (t) => {
        const once = pass.run(tinyLlamaCase(t).graph, {}).graph;
        expect(pass.run(once, {}).stats['fused']).toBe(0);
      }),
      { numRuns: 10 },
    );
  });
});

describe('fuse-rope-qk on the step graph (after insert-kv-cache)', () => {
  it('fires once per layer with q at offset pos and the cache slice (keys rotated already) as k, and keeps the outputs', () => {
    fc.assert(
      fc.property(arbTinyLlama(), fc.integer({ min: 0, max: 4 }), (t, pos) => {
        const step = insertKvCache.run(tinyLlamaCase(t).graph, {}).graph;
        const { graph: out } = fuseRopeQk.run(step, {});
        validate(out);
        const fused = out.nodes.filter((n) => n.op === 'fused' && n.attrs['pattern'] === ROPE_QK);
        expect(fused).toHaveLength(t.config.nLayers);
        for (const f of fused) {
          const parts = ropeQkParts(f.attrs['body'] as FusedBody);
          expect(parts.qOffset).toEqual(sym('pos'));
          expect(parts.kRope).toBeUndefined();
          expect(parts.groups).toBe(t.config.nHeads / t.config.nKvHeads!);
          expect(out.nodes[f.inputs[1]!]!.op).toBe('slice');
        }
        const bindings = randomBindings(step, t.seed, { seq: t.seq, pos }, 0.1, t.config.vocabSize);
        expect(outputError(step, out, bindings)).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 15 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// hand-built cases: what must not fuse

/** The score pattern on q[seq, 4, 2], k[seq, 2, 2] (two query heads per kv head). */
function scores(extraUse: 'none' | 'ropeQ' | 'ropeK' | 'grouped'): Graph {
  const b = new GraphBuilder('scores');
  const S = sym('seq');
  const rope = { base: 10000, layout: 'half', offset: 0 };
  const q = b.add('input', [], { name: 'q', dtype: 'f32', shape: [S, 4, 2] });
  const k = b.add('input', [], { name: 'k', dtype: 'f32', shape: [S, 2, 2] });
  const rq = b.add('rope', [q], rope);
  const rk = b.add('rope', [k], rope);
  const tq = b.add('transpose', [rq], { perm: [1, 0, 2] });
  const gq = b.add('reshape', [tq], { shape: [2, { terms: { seq: 2 }, offset: 0 }, 2] });
  const tk = b.add('transpose', [rk], { perm: [1, 0, 2] });
  b.output('s', b.add('matmul', [gq, tk], { transB: true }));
  if (extraUse === 'ropeQ') b.output('rq', rq);
  if (extraUse === 'ropeK') b.output('e', b.add('exp', [rk]));
  if (extraUse === 'grouped') b.output('g', gq);
  return b.build();
}

describe('fusions fuse only values nothing else reads', () => {
  it('rope_qk: fires on the plain pattern, not when a rotated q or grouped value is read elsewhere', () => {
    expect(fuseRopeQk.run(scores('none'), {}).stats['fused']).toBe(1);
    for (const use of ['ropeQ', 'grouped'] as const) expect(fuseRopeQk.run(scores(use), {}).stats['fused']).toBe(0);
  });

  it('rope_qk: a rotated k read elsewhere stays outside, and the kernel takes it as rotated keys', () => {
    const out = fuseRopeQk.run(scores('ropeK'), {}).graph;
    const f = out.nodes.find((n) => n.op === 'fused')!;
    expect(out.nodes[f.inputs[1]!]!.op).toBe('rope');
    expect(ropeQkParts(f.attrs['body'] as FusedBody).kRope).toBeUndefined();
  });

  it('rope_qk: the fused node takes the un-rotated q and k', () => {
    const out = fuseRopeQk.run(scores('none'), {}).graph;
    const f = out.nodes.find((n) => n.op === 'fused')!;
    expect(f.inputs.map((i) => out.nodes[i]!.attrs['name'])).toEqual(['q', 'k']);
    expect(ropeQkParts(f.attrs['body'] as FusedBody)).toMatchObject({ layout: 'half', groups: 2, qOffset: 0, kRope: { offset: 0, layout: 'half' } });
  });

  function ffn(order: 'act-up' | 'up-act', gateAlsoOutput: boolean): Graph {
    const b = new GraphBuilder('ffn');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 4] });
    const w1 = b.add('param', [], { name: 'w1', dtype: 'f32', shape: [3, 4] });
    const w3 = b.add('param', [], { name: 'w3', dtype: 'f32', shape: [3, 4] });
    const gate = b.add('matmul', [x, w1], { transB: true });
    const up = b.add('matmul', [x, w3], { transB: true });
    const act = b.add('silu', [gate]);
    b.output('h', b.add('mul', order === 'act-up' ? [act, up] : [up, act]));
    if (gateAlsoOutput) b.output('gate', gate);
    return b.build();
  }

  it('swiglu: fires with the mul in either order (operands x, W1, W3), not when the gate is read elsewhere', () => {
    for (const order of ['act-up', 'up-act'] as const) {
      const out = fuseSwiglu.run(ffn(order, false), {}).graph;
      const f = out.nodes.find((n) => n.op === 'fused')!;
      expect(f.inputs.map((i) => out.nodes[i]!.attrs['name'])).toEqual(['x', 'w1', 'w3']);
      expect(out.nodes.map((n) => n.op)).toEqual(['input', 'param', 'param', 'fused']);
    }
    expect(fuseSwiglu.run(ffn('act-up', true), {}).stats['fused']).toBe(0);
  });

  it('causal_softmax: takes the scale in either order or none, not a mask read elsewhere, another axis or a scale of many elements', () => {
    const scores = (scale: 'left' | 'right' | 'none' | 'wide', opts: { maskOut?: boolean; axis?: number } = {}) => {
      const b = new GraphBuilder('sm');
      const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [2, sym('seq'), sym('seq')] });
      const c = b.add('const', [], { dtype: 'f32', shape: scale === 'wide' ? [2, 1, 1] : [], value: scale === 'wide' ? [0.5, 0.25] : [0.125] });
      const y = scale === 'none' ? x : b.add('mul', scale === 'left' ? [c, x] : [x, c]);
      const mask = b.add('causal_mask', [y], { offset: 0 });
      b.output('p', b.add('softmax', [mask], { axis: opts.axis ?? -1 }));
      if (opts.maskOut) b.output('mask', mask);
      return b.build();
    };
    for (const scale of ['left', 'right', 'none'] as const) {
      const out = fuseCausalSoftmax.run(scores(scale), {}).graph;
      const f = out.nodes.find((n) => n.op === 'fused')!;
      expect(f.inputs.map((i) => out.nodes[i]!.op)).toEqual(scale === 'none' ? ['input'] : ['input', 'const']);
      const body = f.attrs['body'] as FusedBody;
      expect(body.nodes.map((n) => n.op)).toEqual(scale === 'none' ? ['input', 'causal_mask', 'softmax'] : ['input', 'input', 'mul', 'causal_mask', 'softmax']);
      expect(causalSoftmaxForm(body)).toEqual(scale === 'none' ? { x: 0, offset: 0 } : { x: 0, scale: 1, offset: 0 });
    }
    // a scale that is not one element stays a mul outside; the mask and softmax still fuse
    const wide = fuseCausalSoftmax.run(scores('wide'), {}).graph;
    expect(wide.nodes.map((n) => n.op)).toEqual(['input', 'const', 'mul', 'fused']);
    expect(fuseCausalSoftmax.run(scores('right', { maskOut: true }), {}).stats['fused']).toBe(0);
    expect(fuseCausalSoftmax.run(scores('right', { axis: 1 }), {}).stats['fused']).toBe(0);
  });

  it('elementwise: takes a tree with its small consts, stops at a value read outside or of another shape, leaves single ops', () => {
    const b = new GraphBuilder('ew');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3, 4] });
    const col = b.add('input', [], { name: 'col', dtype: 'f32', shape: [3, 1] });
    const half = b.add('const', [], { dtype: 'f32', shape: [], value: [0.5] });
    const shared = b.add('exp', [x]); // also an output: stays outside
    const c = b.add('tanh', [col]); // [3, 1]: another shape, stays outside
    const t = b.add('mul', [shared, half]);
    const u = b.add('add', [b.add('neg', [t]), c]);
    const v = b.add('sub', [u, shared]);
    const single = b.add('sigmoid', [x]);
    b.output('v', v);
    b.output('single', single);
    b.output('shared', shared);
    const { graph, stats } = fuseElementwise.run(b.build(), {});
    expect(stats).toEqual({ fused: 1, ops: 4 });
    const f = graph.nodes.find((n) => n.op === 'fused')!;
    expect(f.inputs.map((i) => graph.nodes[i]!.op)).toEqual(['exp', 'tanh']);
    const body = f.attrs['body'] as FusedBody;
    expect(body.nodes.map((n) => n.op)).toEqual(['input', 'input', 'const', 'mul', 'neg', 'add', 'sub']);
    // the const went into the body; sigmoid stays a single op
    expect(graph.nodes.map((n) => n.op)).toEqual(['input', 'input', 'exp', 'tanh', 'fused', 'sigmoid']);
  });
});
