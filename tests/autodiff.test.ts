/**
 * The autodiff pass held to its law: every gradient equals float64 central finite differences,
 * taken along a random direction d — (f(p + εd) − f(p − εd)) / 2ε against ⟨grad, d⟩ — for every
 * op's rule on random small graphs, for whole tiny LLaMAs (MHA, GQA, MQA, tied and untied, both
 * RoPE layouts, rms and layer norm, several activations), and for the training graph after the
 * passes a training program runs. fast-check prints the seed and path of a failing case.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { type Dim, evalDim, sym } from '../graph/dim.js';
import type { Graph } from '../graph/graph.js';
import { type Bindings, interpret } from '../graph/interpret.js';
import { type Attrs, BINARY_OPS, OPS, type OpKind, UNARY_OPS } from '../graph/ops.js';
import { printText } from '../graph/print/index.js';
import { type HostTensor, hostTensor, maxRelError, numelOf } from '../graph/tensor.js';
import { validate } from '../graph/validate.js';
import { RULES } from '../passes/autodiff-rules.js';
import { autodiff, autodiffPass, gradName } from '../passes/autodiff.js';
import { constantFold } from '../passes/constant-fold.js';
import { cse } from '../passes/cse.js';
import { dce } from '../passes/dce.js';
import { fuseCausalSoftmax } from '../passes/fuse-causal-softmax.js';
import { fuseElementwise } from '../passes/fuse-elementwise.js';
import { fuseSwiglu } from '../passes/fuse-swiglu.js';
import { runPipeline } from '../passes/manager.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { randomWeights, weightsToHost } from '../src/runtime/weights.js';
import { lossGraph, trainingGraph } from '../src/train/loss-graph.js';
import { thrown } from './helpers.js';
import { arbTinyLlama, randomBindings } from './pass-laws.js';
import { mulberry32, normalSampler } from './seeded-random.js';

const EPS = 1e-5;
const TOL = 1e-6;

// ---------------------------------------------------------------------------------------------
// the check

function lossOf(g: Graph, b: Bindings): number {
  const t = interpret(g, b)['loss'];
  if (!t || t.data.length !== 1) throw new Error('no scalar loss');
  return t.data[0]!;
}

interface Mismatch {
  readonly what: string;
  readonly fd: number;
  readonly grad: number;
  readonly err: number;
}

/**
 * ⟨grad, d⟩ against the central difference along d, for d over each param alone and over all of
 * them at once. `g` has output `loss`; its gradient graph is `train` (default autodiff(g)).
 * Returns the cases that miss the tolerance (relative to the larger side, or to the sum of
 * |grad·d| where the directional derivative cancels).
 */
function gradientMismatches(g: Graph, b: Bindings, seed: number, train: Graph = autodiff(g)): Mismatch[] {
  validate(train);
  const got = interpret(train, b);
  const params = b.params ?? {};
  const names = Object.keys(params).filter((k) => params[k]!.dtype === 'f32');
  const normal = normalSampler(seed);
  const dirs: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, Array.from(params[k]!.data, () => normal())]));
  const at = (only: string | undefined, s: number) => {
    const moved: Record<string, HostTensor> = { ...params };
    for (const k of names)
      if (only === undefined || k === only) moved[k] = hostTensor('f32', params[k]!.shape, params[k]!.data.map((v, i) => v + s * EPS * dirs[k]![i]!));
    return lossOf(g, { ...b, params: moved });
  };
  const f0 = lossOf(g, b);
  const out: Mismatch[] = [];
  for (const only of [...names.map((k) => k as string | undefined), undefined]) {
    const fd = (at(only, 1) - at(only, -1)) / (2 * EPS);
    let grad = 0;
    let scale = 0;
    for (const k of names) {
      if (only !== undefined && k !== only) continue;
      const gk = got[gradName(k)];
      if (!gk) throw new Error(`no output ${gradName(k)}`);
      expect(gk.shape).toEqual(params[k]!.shape);
      gk.data.forEach((v, i) => {
        grad += v * dirs[k]![i]!;
        scale += Math.abs(v * dirs[k]![i]!);
      });
    }
    // relative to the larger side (or to Σ|grad·d| where it cancels), above the difference's own
    // rounding: f's last bits over 2ε, ~1e-11·|f|
    const err = Math.abs(fd - grad) / Math.max(Math.abs(fd), Math.abs(grad), 1e-3 * scale);
    const floor = 1e-9 * (1 + Math.abs(f0));
    if (!(Math.abs(fd - grad) <= TOL * Math.max(Math.abs(fd), Math.abs(grad), 1e-3 * scale) + floor)) out.push({ what: only ?? 'all params', fd, grad, err });
  }
  return out;
}

function expectGradients(g: Graph, b: Bindings, seed: number, train?: Graph): void {
  const bad = gradientMismatches(g, b, seed, train);
  expect(bad, `gradient ≠ finite differences:\n${bad.map((m) => `  ${m.what}: fd ${m.fd}, grad ${m.grad} (rel ${m.err.toExponential(2)})`).join('\n')}`).toEqual([]);
}

// ---------------------------------------------------------------------------------------------
// small random graphs: one op between random params and a random linear read-out

/** Builds a case: params and inputs with their values, then loss = Σ y ⊙ w over every axis. */
class Case {
  readonly b = new GraphBuilder('case');
  readonly params: Record<string, HostTensor> = {};
  readonly inputs: Record<string, HostTensor> = {};
  readonly rnd: () => number;
  private readonly gauss: () => number;
  private k = 0;

  constructor(
    seed: number,
    readonly symbols: Record<string, number> = {},
  ) {
    this.rnd = mulberry32(seed);
    this.gauss = normalSampler(seed ^ 0x2545f491);
  }

  normal(): number {
    return this.gauss();
  }

  /** An f32 param (or, with `param` false, an input autodiff leaves alone). */
  f32(shape: readonly Dim[], gen: (i: number) => number = () => this.normal(), param = true): number {
    const name = `${param ? 'p' : 'x'}${this.k++}`;
    const dims = shape.map((d) => evalDim(d, this.symbols));
    const id = this.b.add(param ? 'param' : 'input', [], { name, dtype: 'f32', shape: [...shape] });
    (param ? this.params : this.inputs)[name] = hostTensor('f32', dims, Array.from({ length: numelOf(dims) }, (_, i) => gen(i)));
    return id;
  }

  i32(shape: readonly number[], range: number): number {
    const name = `i${this.k++}`;
    const id = this.b.add('input', [], { name, dtype: 'i32', shape: [...shape] });
    this.inputs[name] = hostTensor('i32', shape, Array.from({ length: numelOf(shape) }, () => Math.floor(this.rnd() * range)));
    return id;
  }

  add(op: OpKind, inputs: readonly number[], attrs: Attrs = {}): number {
    return this.b.add(op, inputs, attrs);
  }

  finish(y: number): { graph: Graph; bindings: Bindings } {
    const t = this.b.typeOf(y);
    let v = this.add('mul', [y, this.f32(t.shape, () => this.normal(), false)]);
    for (let a = 0; a < t.shape.length; a++) v = this.add('sum', [v], { axis: a });
    this.b.output('loss', v);
    return { graph: this.b.build(), bindings: { params: this.params, inputs: this.inputs, symbols: this.symbols } };
  }
}

const arbDims = (minRank: number, maxRank: number, maxDim = 3) => fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: minRank, maxLength: maxRank });

/** Values away from 0 (for kinks at 0 and for domains that exclude it). */
const awayFromZero = (c: Case) => () => (c.rnd() < 0.5 ? -1 : 1) * (0.2 + Math.abs(c.normal()));
const positive = (c: Case) => () => 0.5 + Math.abs(c.normal());

/** The unary ops, each on values where it is smooth. */
const UNARY_DOMAIN: Partial<Record<string, (c: Case) => () => number>> = { abs: awayFromZero, relu: awayFromZero, log: positive, sqrt: positive, rsqrt: positive };

/** A shape that broadcasts to `full`: some leading dims dropped, some dims set to 1. */
function broadcastable(full: readonly number[], rnd: () => number): number[] {
  const drop = Math.floor(rnd() * (full.length + 1));
  return full.slice(drop).map((d) => (rnd() < 0.3 ? 1 : d));
}

function property(name: string, arb: fc.Arbitrary<{ graph: Graph; bindings: Bindings; seed: number }>, numRuns = 30): void {
  test(name, () => {
    fc.assert(
      fc.property(arb, ({ graph, bindings, seed }) => expectGradients(graph, bindings, seed)),
      { numRuns },
    );
  });
}

const seeded = <T>(arb: fc.Arbitrary<T>) => fc.tuple(arb, fc.nat());

describe('every rule equals finite differences (random small graphs)', () => {
  property(
    'unary ops',
    seeded(fc.record({ op: fc.constantFrom(...UNARY_OPS), shape: arbDims(0, 3) })).map(([{ op, shape }, seed]) => {
      const c = new Case(seed);
      const x = c.f32(shape, (UNARY_DOMAIN[op] ?? ((c: Case) => () => c.normal()))(c));
      return { ...c.finish(c.add(op, [x])), seed };
    }),
    60,
  );

  property(
    'binary ops, broadcasting both ways, with and without a gradient for each side',
    seeded(fc.record({ op: fc.constantFrom(...BINARY_OPS), full: arbDims(0, 3), params: fc.constantFrom([true, true], [true, false], [false, true]) })).map(
      ([{ op, full, params }, seed]) => {
        const c = new Case(seed);
        const [sa, sb] = [broadcastable(full, c.rnd), broadcastable(full, c.rnd)];
        let ga = () => c.normal();
        let gb = () => c.normal();
        // max/min: a on the integers, b half way between, so no tie is within reach of ε
        if (op === 'max' || op === 'min') [ga, gb] = [() => Math.round(2 * c.normal()) + 0.1 * c.rnd(), () => Math.round(2 * c.normal()) + 0.5 + 0.1 * c.rnd()];
        if (op === 'div') gb = awayFromZero(c);
        if (op === 'pow') [ga, gb] = [positive(c), () => 1.5 * c.normal()];
        const a = c.f32(sa, ga, params[0]);
        const b = c.f32(sb, gb, params[1]);
        return { ...c.finish(c.add(op, [a, b])), seed };
      },
    ),
    70,
  );

  property(
    'x ⊙ x + sin x: several uses of one value add up',
    seeded(arbDims(1, 2)).map(([shape, seed]) => {
      const c = new Case(seed);
      const x = c.f32(shape);
      return { ...c.finish(c.add('add', [c.add('mul', [x, x]), c.add('sin', [x])])), seed };
    }),
    10,
  );

  property(
    'sum, mean, amax over any axis',
    seeded(fc.record({ op: fc.constantFrom('sum' as const, 'mean' as const, 'amax' as const), shape: arbDims(1, 3, 4), axis: fc.integer({ min: -3, max: 2 }) })).map(
      ([{ op, shape, axis }, seed]) => {
        const c = new Case(seed);
        const n = numelOf(shape);
        // amax: distinct values (a shuffled grid plus a little noise), so the maximum is unique
        const order = Array.from({ length: n }, (_, i) => i).sort(() => c.rnd() - 0.5);
        const x = c.f32(shape, op === 'amax' ? (i) => 0.25 * order[i]! + 0.05 * c.rnd() : () => c.normal());
        const ax = ((axis % shape.length) + shape.length) % shape.length;
        return { ...c.finish(c.add(op, [x], { axis: ax - (c.rnd() < 0.5 ? shape.length : 0) })), seed };
      },
    ),
  );

  property(
    'amax with ties splits the gradient (checked on a smooth composite: amax of a constant row)',
    seeded(fc.integer({ min: 2, max: 4 })).map(([n, seed]) => {
      // x·1 broadcast to [n]: every entry ties, amax = x, d amax / dx = 1 only if the split sums to 1
      const c = new Case(seed);
      const x = c.f32([1]);
      return { ...c.finish(c.add('amax', [c.add('broadcast', [x], { shape: [n] })], { axis: 0 })), seed };
    }),
    5,
  );

  property(
    'mean and sum over a symbolic axis (seq)',
    seeded(fc.record({ seq: fc.integer({ min: 1, max: 4 }), op: fc.constantFrom('sum' as const, 'mean' as const) })).map(([{ seq, op }, seed]) => {
      const c = new Case(seed, { seq });
      const x = c.f32([3]);
      const wide = c.add('mul', [c.add('broadcast', [x], { shape: [sym('seq'), 3] }), c.f32([sym('seq'), 1], () => c.normal(), false)]);
      return { ...c.finish(c.add(op, [wide], { axis: 0 })), seed };
    }),
    10,
  );

  property(
    'matmul: batch broadcast, transB, either side without a gradient',
    seeded(
      fc.record({
        batch: arbDims(0, 2),
        m: fc.integer({ min: 1, max: 3 }),
        k: fc.integer({ min: 1, max: 3 }),
        n: fc.integer({ min: 1, max: 3 }),
        transB: fc.boolean(),
        params: fc.constantFrom([true, true], [true, false], [false, true]),
      }),
    ).map(([{ batch, m, k, n, transB, params }, seed]) => {
      const c = new Case(seed);
      const [ba, bb] = [broadcastable(batch, c.rnd), broadcastable(batch, c.rnd)];
      const a = c.f32([...ba, m, k], undefined, params[0]);
      const b = c.f32([...bb, ...(transB ? [n, k] : [k, n])], undefined, params[1]);
      return { ...c.finish(c.add('matmul', [a, b], { transB })), seed };
    }),
    50,
  );

  property(
    'reshape and transpose',
    seeded(fc.record({ shape: arbDims(1, 4), way: fc.nat() })).map(([{ shape, way }, seed]) => {
      const c = new Case(seed);
      const x = c.f32(shape);
      const n = numelOf(shape);
      const perm = shape.map((_, i) => i).sort(() => c.rnd() - 0.5);
      const targets = [[n], [1, n], [...shape].reverse(), [...shape, 1]];
      const y = way % 2 === 0 ? c.add('reshape', [x], { shape: targets[(way >> 1) % targets.length]! }) : c.add('transpose', [x], { perm });
      return { ...c.finish(y), seed };
    }),
  );

  property(
    'slice, update_slice and concat',
    seeded(fc.record({ shape: arbDims(1, 3, 4), axis: fc.nat(), a: fc.nat(), b: fc.nat(), op: fc.constantFrom('slice' as const, 'update_slice' as const, 'concat' as const) })).map(
      ([{ shape, axis, a, b, op }, seed]) => {
        const c = new Case(seed);
        const ax = axis % shape.length;
        const size = shape[ax]!;
        const [lo, hi] = [a % (size + 1), b % (size + 1)].sort((p, q) => p - q) as [number, number];
        const x = c.f32(shape);
        if (op === 'slice') return { ...c.finish(c.add('slice', [x], { axis: ax, start: lo, end: hi === lo ? Math.min(size, lo + 1) : hi })), seed };
        if (op === 'update_slice') {
          const len = Math.max(1, hi - lo);
          const start = Math.min(lo, size - len);
          const u = c.f32(shape.map((d, i) => (i === ax ? len : d)));
          return { ...c.finish(c.add('update_slice', [x, u], { axis: ax - (c.rnd() < 0.5 ? shape.length : 0), start })), seed };
        }
        const y = c.f32(shape.map((d, i) => (i === ax ? 1 + (a % 2) : d)), undefined, b % 3 !== 0);
        return { ...c.finish(c.add('concat', [x, y, x], { axis: ax })), seed };
      },
    ),
    40,
  );

  property(
    'broadcast',
    seeded(arbDims(0, 3)).map(([full, seed]) => {
      const c = new Case(seed);
      const x = c.f32(broadcastable(full, c.rnd));
      return { ...c.finish(c.add('broadcast', [x], { shape: [...(c.rnd() < 0.5 ? [2] : []), ...full] })), seed };
    }),
  );

  property(
    'gather (repeated ids accumulate) and scatter_add',
    seeded(fc.record({ V: fc.integer({ min: 1, max: 4 }), rest: arbDims(0, 2), ids: arbDims(1, 2, 4), scatter: fc.boolean() })).map(([{ V, rest, ids, scatter }, seed]) => {
      const c = new Case(seed);
      const idx = c.i32(ids, V);
      if (scatter) return { ...c.finish(c.add('scatter_add', [idx, c.f32([...ids, ...rest])], { rows: V })), seed };
      return { ...c.finish(c.add('gather', [c.f32([V, ...rest]), idx])), seed };
    }),
  );

  property(
    'softmax over any axis',
    seeded(fc.record({ shape: arbDims(1, 3, 4), axis: fc.nat() })).map(([{ shape, axis }, seed]) => {
      const c = new Case(seed);
      return { ...c.finish(c.add('softmax', [c.f32(shape)], { axis: axis % shape.length })), seed };
    }),
  );

  property(
    'rmsnorm: x and w',
    seeded(fc.record({ lead: arbDims(0, 2), d: fc.integer({ min: 1, max: 5 }), eps: fc.constantFrom(1e-5, 0.1, 0) })).map(([{ lead, d, eps }, seed]) => {
      const c = new Case(seed);
      return { ...c.finish(c.add('rmsnorm', [c.f32([...lead, d]), c.f32([d])], { eps })), seed };
    }),
  );

  property(
    'rope: both layouts, static and symbolic offsets',
    seeded(
      fc.record({
        s: fc.integer({ min: 1, max: 3 }),
        h: fc.integer({ min: 1, max: 2 }),
        half: fc.integer({ min: 1, max: 3 }),
        layout: fc.constantFrom('interleaved', 'half'),
        base: fc.constantFrom(10000, 50, 2),
        offset: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant('pos' as const)),
      }),
    ).map(([{ s, h, half, layout, base, offset }, seed]) => {
      const c = new Case(seed, { pos: 3 });
      const x = c.f32([s, h, 2 * half]);
      return { ...c.finish(c.add('rope', [x], { base, layout, offset: offset === 'pos' ? sym('pos') : offset })), seed };
    }),
  );

  property(
    'causal_mask (under exp, as softmax sees it)',
    seeded(fc.record({ lead: arbDims(0, 1), q: fc.integer({ min: 1, max: 3 }), k: fc.integer({ min: 1, max: 4 }), offset: fc.integer({ min: 0, max: 2 }) })).map(
      ([{ lead, q, k, offset }, seed]) => {
        const c = new Case(seed);
        return { ...c.finish(c.add('exp', [c.add('causal_mask', [c.f32([...lead, q, k])], { offset })])), seed };
      },
    ),
  );

  property(
    'cross_entropy',
    seeded(fc.record({ lead: arbDims(0, 2), V: fc.integer({ min: 1, max: 5 }), scale: fc.constantFrom(1, 10) })).map(([{ lead, V, scale }, seed]) => {
      const c = new Case(seed);
      const logits = c.f32([...lead, V], () => scale * c.normal());
      return { ...c.finish(c.add('cross_entropy', [logits, c.i32(lead, V)])), seed };
    }),
  );

  property(
    'fused nodes: differentiated through their bodies (fuse-elementwise, fuse-swiglu)',
    seeded(fc.record({ s: fc.integer({ min: 1, max: 3 }), d: fc.integer({ min: 1, max: 3 }), f: fc.integer({ min: 1, max: 3 }) })).map(([{ s, d, f }, seed]) => {
      const c = new Case(seed);
      const x = c.f32([s, d]);
      const [w1, w3] = [c.f32([f, d]), c.f32([f, d])];
      const h = c.add('mul', [c.add('silu', [c.add('matmul', [x, w1], { transB: true })]), c.add('matmul', [x, w3], { transB: true })]);
      const bias = c.f32([f]);
      const y = c.add('tanh', [c.add('add', [c.add('mul', [h, bias]), bias])]);
      const { graph, bindings } = c.finish(y);
      const fused = fuseElementwise.run(fuseSwiglu.run(graph, {}).graph, {}).graph;
      const patterns = fused.nodes.filter((n) => n.op === 'fused').map((n) => String(n.attrs['pattern']));
      expect(patterns).toContain('swiglu');
      expect(patterns).toContain('elementwise');
      return { graph: fused, bindings, seed };
    }),
    15,
  );
});

// ---------------------------------------------------------------------------------------------
// whole models

function llamaCase(config: LlamaConfig, seq: number, seed: number): { graph: Graph; bindings: Bindings } {
  const model = llama(config).build();
  const graph = lossGraph(model);
  const rnd = mulberry32(seed ^ 0x9e3779b9);
  const ids = () => hostTensor('i32', [seq], Array.from({ length: seq }, () => Math.floor(rnd() * config.vocabSize)));
  return { graph, bindings: { params: weightsToHost(model, randomWeights(model, seed)), inputs: { tokens: ids(), targets: ids() }, symbols: { seq } } };
}

const base: LlamaConfig = { vocabSize: 11, dim: 8, nLayers: 1, nHeads: 2, hiddenDim: 12, maxSeqLen: 8 };

const VARIANTS: [string, LlamaConfig, number][] = [
  ['MHA, swiglu, interleaved rope, rms norm, untied', { ...base, nLayers: 2 }, 4],
  ['GQA (4 heads, 2 kv), half rope, tied', { ...base, dim: 16, nHeads: 4, nKvHeads: 2, ropeLayout: 'half', tiedEmbeddings: true }, 5],
  ['MQA (4 heads, 1 kv), interleaved rope, layer norm, gelu', { ...base, dim: 16, nHeads: 4, nKvHeads: 1, norm: 'layer', activation: 'gelu' }, 3],
  ['MHA, half rope, layer norm, geglu, tied', { ...base, ropeLayout: 'half', norm: 'layer', activation: 'geglu', tiedEmbeddings: true }, 4],
  ['GQA, squared ReLU, rms norm, 2 layers', { ...base, dim: 16, nHeads: 4, nKvHeads: 2, activation: 'relu2', nLayers: 2 }, 3],
  ['MQA, a custom activation, half rope', { ...base, nKvHeads: 1, activation: (x) => x * Math.tanh(x) + 0.5 * x, ropeLayout: 'half' }, 5],
  ['one token', base, 1],
];

describe('whole tiny LLaMAs: gradients equal finite differences', () => {
  test.each(VARIANTS)('%s', (_, config, seq) => {
    const { graph, bindings } = llamaCase(config, seq, 7);
    const train = trainingGraph(llama(config).build());
    expect(lossOf(train, bindings)).toBe(lossOf(graph, bindings));
    expectGradients(graph, bindings, 11, train);
  });

  test('random variants (the pass tests’ generator; plain ReLU left out: a kink within ε would fool the check)', () => {
    fc.assert(
      fc.property(
        arbTinyLlama().filter((t) => t.activation !== 'relu'),
        (t) => {
          const model = llama(t.config).build();
          const graph = lossGraph(model);
          const bindings = randomBindings(graph, t.seed, { seq: t.seq }, 0.3, t.config.vocabSize);
          expectGradients(graph, bindings, t.seed ^ 1, trainingGraph(model));
        },
      ),
      { numRuns: 8 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// the training graph through the passes

const TRAIN_PASSES = [constantFold, cse, dce, fuseSwiglu, fuseCausalSoftmax, fuseElementwise, dce];

describe('the backward graph through the passes', () => {
  test.each(VARIANTS.slice(0, 4))('%s: loss and every gradient unchanged; fuse-elementwise fires on grad nodes', (_, config, seq) => {
    const { bindings } = llamaCase(config, seq, 3);
    const train = trainingGraph(llama(config).build());
    const { graph, reports } = runPipeline(train, TRAIN_PASSES);
    const want = interpret(train, bindings);
    const got = interpret(graph, bindings);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const k of Object.keys(want)) expect(maxRelError(got[k]!, want[k]!, 1e-12), k).toBeLessThan(1e-12);
    const fusedGrad = graph.nodes.filter((n) => n.op === 'fused' && n.attrs['pattern'] === 'elementwise' && n.scope.startsWith('grad'));
    expect(fusedGrad.length).toBeGreaterThan(0);
    expect(reports.find((r) => r.name === 'fuse-causal-softmax')!.stats['fused']).toBe(config.nLayers);
    expect(graph.nodes.length).toBeLessThan(train.nodes.length);
  });
});

// ---------------------------------------------------------------------------------------------
// the pass's shape

function smallGraph(): GraphBuilder {
  const b = new GraphBuilder('small');
  const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [3] });
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3] });
  b.within('head', () => b.output('loss', b.add('sum', [b.add('mul', [w, x])], { axis: 0 })));
  return b;
}

describe('autodiff', () => {
  test('keeps the forward graph and outputs, adds grad:<param> of the param’s shape', () => {
    const model = llama(base).build();
    const lg = lossGraph(model);
    const tg = autodiff(lg);
    expect(tg.nodes.slice(0, lg.nodes.length).map((n) => [n.op, n.inputs, n.attrs, n.scope])).toEqual(lg.nodes.map((n) => [n.op, n.inputs, n.attrs, n.scope]));
    const params = lg.nodes.filter((n) => n.op === 'param');
    expect(tg.outputs.map((o) => o.name)).toEqual(['loss', ...params.map((p) => `grad:${String(p.attrs['name'])}`)]);
    for (const p of params) expect(tg.nodes[tg.outputs.find((o) => o.name === gradName(String(p.attrs['name'])))!.value]!.type).toEqual(p.type);
    expect(tg.meta).toEqual(lg.meta);
  });

  test('backward nodes read like the model: scopes under grad., the model’s source positions', () => {
    const tg = trainingGraph(llama({ ...base, nLayers: 2 }).build());
    const scopes = new Set(tg.nodes.map((n) => n.scope));
    for (const s of ['grad.layers.1.attn.q', 'grad.layers.0.attn.scores', 'grad.layers.0.ffn.gate', 'grad.head.norm', 'grad.embed', 'grad.loss']) expect(scopes).toContain(s);
    const text = printText(tg);
    expect(text).toContain('grad.layers.1.attn.q');
    expect(text).toContain('scatter_add');
    const back = tg.nodes.filter((n) => n.scope.startsWith('grad'));
    expect(back.filter((n) => n.loc !== undefined).length).toBeGreaterThan(back.length / 2);
  });

  test('only the path between params and loss: no backward nodes elsewhere, zeros for a param the loss ignores', () => {
    const b = smallGraph();
    const w = 0;
    const q = b.add('param', [], { name: 'q', dtype: 'f32', shape: [2, 2] });
    b.output('other', b.add('exp', [b.add('add', [w, b.add('sum', [b.add('sum', [q], { axis: 0 })], { axis: 1 })])]));
    const g = b.build();
    const tg = autodiff(g);
    const back = tg.nodes.slice(g.nodes.length);
    expect(back.some((n) => n.op === 'exp')).toBe(false);
    const out = interpret(tg, { params: { w: hostTensor('f32', [3], [1, 2, 3]), q: hostTensor('f32', [2, 2], [1, 2, 3, 4]) }, inputs: { x: hostTensor('f32', [3], [4, 5, 6]) } });
    expect(Array.from(out['grad:w']!.data)).toEqual([4, 5, 6]);
    expect(out['grad:q']).toEqual(hostTensor('f32', [2, 2], [0, 0, 0, 0]));
    expect(Object.keys(out)).toEqual(['loss', 'other', 'grad:w', 'grad:q']);
  });

  test('integer values get no gradient: the ids of a gather, the targets of a cross-entropy', () => {
    const tg = trainingGraph(llama(base).build());
    expect(validate(tg)).toBeUndefined();
    const back = tg.nodes.filter((n) => n.scope.startsWith('grad'));
    expect(back.every((n) => n.type.dtype === 'f32')).toBe(true);
    expect(tg.outputs.filter((o) => o.name.startsWith('grad:')).length).toBe(llama(base).build().nodes.filter((n) => n.op === 'param').length);
  });

  test('params: a chosen subset; a loss of shape []', () => {
    const b = new GraphBuilder('sub');
    const [u, v] = ['u', 'v'].map((name) => b.add('param', [], { name, dtype: 'f32', shape: [2] })) as [number, number];
    b.output('loss', b.add('reshape', [b.add('sum', [b.add('mul', [u, v])], { axis: 0 })], { shape: [] }));
    const tg = autodiff(b.build(), { params: ['v'] });
    expect(tg.outputs.map((o) => o.name)).toEqual(['loss', 'grad:v']);
    const out = interpret(tg, { params: { u: hostTensor('f32', [2], [3, 4]), v: hostTensor('f32', [2], [1, 1]) } });
    expect(Array.from(out['grad:v']!.data)).toEqual([3, 4]);
  });

  test('as a pass', () => {
    const g = smallGraph().build();
    const { graph, stats } = autodiffPass().run(g, {});
    expect(graph.outputs.map((o) => o.name)).toEqual(['loss', 'grad:w']);
    expect(stats['grads']).toBe(1);
    expect(stats['added']).toBe(graph.nodes.length - g.nodes.length);
  });

  test('mistakes are K1018 errors naming what is missing', () => {
    const g = smallGraph().build();
    const e1 = thrown(() => autodiff(g, { loss: 'nll' }));
    expect([e1.code, e1.message]).toEqual(['K1018', "autodiff: the graph has no output 'nll' to differentiate (its outputs: loss)"]);
    const e2 = thrown(() => autodiff(g, { params: ['w', 'nope'] }));
    expect([e2.code, e2.message]).toEqual(['K1018', "autodiff: no param named 'nope' (params: w)"]);
    const b = smallGraph();
    b.output('vec', 1);
    const e3 = thrown(() => autodiff(b.build(), { loss: 'vec' }));
    expect([e3.code, e3.message]).toEqual(['K1018', "autodiff: output 'vec' must be an f32 scalar (shape [] or all 1s), it is f32[3]"]);
  });

  test('an op without a rule on the path is K1018 naming the op and its scope', () => {
    const config = { ...base, nLayers: 1 };
    const lg = lossGraph(llama(config).build());
    const { rope: _, ...noRope } = RULES;
    const e = thrown(() => autodiff(lg, { rules: noRope }));
    expect(e.code).toBe('K1018');
    expect(e.message).toMatch(/^autodiff: no gradient rule for op 'rope' \(%\d+ in layers\.0\.attn\.k_rope\), which lies between the params and output 'loss'$/);
    expect(e.loc?.file).toMatch(/src\/dsl\/llama\.ts$/);
    // off the path, a missing rule does not matter
    const { exp: __, ...noExp } = RULES;
    expect(() => autodiff(lg, { rules: noExp })).not.toThrow();
  });

  test('causal_mask passes g where kept and 0 where masked (seen directly: after −∞ every op’s derivative is 0, so finite differences cannot tell)', () => {
    const b = new GraphBuilder('mask');
    const x = b.add('param', [], { name: 'x', dtype: 'f32', shape: [2, 3] });
    const w = b.add('input', [], { name: 'w', dtype: 'f32', shape: [2, 3] });
    const e = b.add('exp', [b.add('causal_mask', [x], { offset: 0 })]);
    b.output('loss', b.add('sum', [b.add('sum', [b.add('mul', [e, w])], { axis: 0 })], { axis: 1 }));
    // exp's rule replaced by one that passes g through, so the mask's rule sees a nonzero g everywhere
    const tg = autodiff(b.build(), { rules: { ...RULES, exp: (c) => [c.g] } });
    const out = interpret(tg, { params: { x: hostTensor('f32', [2, 3], [0, 0, 0, 0, 0, 0]) }, inputs: { w: hostTensor('f32', [2, 3], [1, 2, 3, 4, 5, 6]) } });
    expect(Array.from(out['grad:x']!.data)).toEqual([1, 0, 0, 4, 5, 0]);
  });

  test('every op with a float operand has a rule; the integer-only ops need none', () => {
    // sources have no operands; one_hot and dropout_mask read only integers
    const needNone: OpKind[] = ['input', 'param', 'state', 'const', 'iota', 'one_hot', 'dropout_mask'];
    const withRule = Object.keys(RULES).sort();
    expect(withRule).toEqual((Object.keys(OPS) as OpKind[]).filter((k) => !needNone.includes(k)).sort());
  });
});

describe('lossGraph', () => {
  test('tokens and targets in, the mean cross-entropy out, the model’s tokens symbol kept', () => {
    const b = new GraphBuilder('named');
    const n = sym('n');
    const tokens = b.add('input', [], { name: 'tokens', dtype: 'i32', shape: [n] });
    const table = b.add('param', [], { name: 'emb', dtype: 'f32', shape: [5, 5] });
    b.output('logits', b.add('gather', [table, tokens]));
    b.output('extra', b.add('exp', [table]));
    const lg = lossGraph(b.build());
    expect(lg.outputs.map((o) => o.name)).toEqual(['loss']);
    expect(lg.nodes.some((n) => n.op === 'exp')).toBe(false);
    const targets = lg.nodes.find((x) => x.op === 'input' && x.attrs['name'] === 'targets')!;
    expect(targets.type).toEqual({ dtype: 'i32', shape: [n] });
    const loss = lg.nodes[lg.outputs[0]!.value]!;
    expect(loss.type).toEqual({ dtype: 'f32', shape: [1] });
    expect(loss.scope).toBe('loss');
    // emb = identity·3: logits rows are 3·one_hot(token); loss per row = lse − 3·[token = target]
    const emb = hostTensor('f32', [5, 5], Array.from({ length: 25 }, (_, i) => (i % 6 === 0 ? 3 : 0)));
    const lse = Math.log(Math.exp(3) + 4);
    const out = interpret(lg, { params: { emb }, inputs: { tokens: hostTensor('i32', [2], [1, 2]), targets: hostTensor('i32', [2], [1, 0]) } });
    expect(out['loss']!.data[0]).toBeCloseTo((lse - 3 + lse) / 2, 12);
    expect(lossGraph(b.build(), { keepLogits: true }).outputs.map((o) => o.name)).toEqual(['loss', 'logits']);
  });

  test('K1018 when the model lacks tokens or logits', () => {
    const b = new GraphBuilder('bad');
    b.output('y', b.add('param', [], { name: 'w', dtype: 'f32', shape: [2] }));
    const e = thrown(() => lossGraph(b.build()));
    expect([e.code, e.message]).toEqual(['K1018', "lossGraph: graph bad has no output 'logits' (its outputs: y)"]);
    const b2 = new GraphBuilder('bad2');
    b2.output('logits', b2.add('param', [], { name: 'w', dtype: 'f32', shape: [2, 3] }));
    expect(thrown(() => lossGraph(b2.build())).message).toBe("lossGraph: graph bad2 has no input 'tokens'");
  });

  test('trainingGraph: params chosen; unknown ones are K1018', () => {
    const model = llama(base).build();
    const tg = trainingGraph(model, { params: ['output.weight'] });
    expect(tg.outputs.map((o) => o.name)).toEqual(['loss', 'grad:output.weight']);
    expect(thrown(() => trainingGraph(model, { params: ['x'] })).code).toBe('K1018');
  });
});
