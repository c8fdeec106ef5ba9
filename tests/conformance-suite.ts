/**
 * The conformance tests every CPU backend's test file runs (js, and wasm on 1 and 2 threads):
 * the op cases of backends/conformance.ts, random graphs, the tiny LLaMA before and after the
 * pipeline, random LLaMA variants, and prefill-then-decode against one full pass — end to end and
 * node by node against the interpreter. Call it inside a `describe`.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { Backend, HostArray } from '../backends/backend.js';
import { checkBackend, conformanceCases, randomBindings } from '../backends/conformance.js';
import { GraphBuilder } from '../graph/builder.js';
import type { Graph } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import { OPS, type OpKind } from '../graph/ops.js';
import { hostTensor, maxRelError } from '../graph/tensor.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { llama } from '../src/dsl/llama.js';
import { presetModel } from '../src/dsl/presets.js';
import { trainingGraph } from '../src/train/loss-graph.js';
import { TRAIN_PIPELINE } from '../src/train/step.js';
import { arbGraph } from './arbitrary.js';
import { arbTinyLlama } from './tiny-llama.js';

export interface SuiteOptions {
  /** End to end (relative, floor 1e-2) and per node (relative, floor 1e-6). */
  readonly tol: { readonly rel: number; readonly perNode: number };
  /** fast-check runs: random graphs, random graphs with fused nodes, random tiny LLaMA variants. */
  readonly runs: { readonly graphs: number; readonly fused: number; readonly llamas: number };
  /** Decode steps alternate the prefill and decode programs on the same state arrays (each must see the other's writes). */
  readonly alternate?: boolean;
}

const CASES = conformanceCases();
const SEEDS = [1, 2];

export function conformanceSuite(backend: Backend, { tol, runs, alternate = false }: SuiteOptions): void {
  /** End to end, then node by node. */
  const both = async (g: Graph, seed: number, symbols?: Record<string, number>, what = '') => {
    const r = await checkBackend(backend, g, { seed, ...(symbols ? { symbols } : {}) });
    expect(r.maxRelError, `${r.summary}${what}`).toBeLessThanOrEqual(tol.rel);
    const p = await checkBackend(backend, g, { seed, perNode: true, tolerance: tol.perNode, ...(symbols ? { symbols } : {}) });
    expect(p.maxRelError, `${p.summary}${what}`).toBeLessThanOrEqual(tol.perNode);
  };

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    for (const seed of SEEDS) await both(c.graph, seed, c.symbols);
  });

  it('the cases cover every core op and every fused pattern the backend has', () => {
    const ops = new Set(CASES.flatMap((c) => c.graph.nodes.map((n) => n.op)));
    expect((Object.keys(OPS) as OpKind[]).filter((op) => !ops.has(op))).toEqual([]);
    const patterns = new Set(CASES.flatMap((c) => c.graph.nodes.filter((n) => n.op === 'fused').map((n) => String(n.attrs['pattern']))));
    expect([...patterns].sort()).toEqual([...backend.caps.fusedPatterns].sort());
  });

  // The hash written out from the op's meaning (graph/ops.ts), not from graph/random.ts, which the
  // interpreter shares: keys with negative and large seeds, streams up to 2³¹ − 1, odd lengths.
  it('dropout_mask is the hash of its spec, bit for bit, and keeps about 1 − p', async () => {
    const fmix = (h: number) => {
      h ^= h >>> 16;
      h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      return h >>> 0;
    };
    const n = 10_007;
    for (const [seed, step, stream, p] of [
      [0, 0, 0, 0.5],
      [-1, 7, 2147483647, 0.1],
      [2147483647, -2147483648, 12345, 0.9],
      [918273645, 3, 1, 0.25],
    ] as const) {
      const b = new GraphBuilder('dropout spec');
      b.output('y', b.add('dropout_mask', [b.add('input', [], { name: 'key', dtype: 'i32', shape: [2] })], { shape: [n], p, stream }));
      const exe = await backend.compile(b.build());
      try {
        exe.setWeights({});
        const y = exe.run({ inputs: { key: Int32Array.of(seed, step) }, symbols: {} })['y'] as Float32Array;
        const scale = Math.fround(1 / (1 - p));
        let kept = 0;
        const bad: string[] = [];
        for (let i = 0; i < n; i++) {
          let h = fmix(i ^ 0x9e3779b9);
          h = fmix(h ^ Math.imul(stream, 0x632be5ab));
          h = fmix(h ^ step);
          h = fmix(h ^ seed);
          const want = (h >>> 8) / 2 ** 24 >= p ? scale : 0;
          if (want) kept++;
          if (!Object.is(y[i], want) && bad.length < 3) bad.push(`element ${i}: ${y[i]}, want ${want}`);
        }
        expect(bad, `key [${seed}, ${step}], stream ${stream}, p ${p}`).toEqual([]);
        expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.02);
      } finally {
        exe.dispose?.();
      }
    }
  });

  it('random graphs (arbGraph): every node agrees with the interpreter', async () => {
    const noFused = (Object.keys(OPS) as OpKind[]).filter((op) => op !== 'fused');
    await fc.assert(
      fc.asyncProperty(arbGraph({ ops: noFused }), fc.nat(), async (g, seed) => {
        const r = await checkBackend(backend, g, { seed, perNode: true, tolerance: tol.perNode });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.perNode);
      }),
      { numRuns: runs.graphs },
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
      { numRuns: runs.fused },
    );
  });

  it('the tiny LLaMA graph, before the pipeline', async () => {
    for (const seed of SEEDS) await both(presetModel('tiny').build(), seed, { seq: 5 });
  });

  it('the tiny LLaMA graph after the pipeline: fused, cached, planned', async () => {
    const step = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
    expect(step.nodes.filter((n) => n.op === 'fused').map((n) => n.attrs['pattern'])).toEqual(expect.arrayContaining(['rope_qk', 'swiglu']));
    expect(step.meta['memoryPlan']).toBeDefined();
    for (const [seed, symbols] of [
      [1, { seq: 5, pos: 0 }],
      [2, { seq: 3, pos: 7 }],
      [3, { seq: 1, pos: 20 }],
    ] as const)
      await both(step, seed, symbols);
  });

  // A training step's graph: the loss (mean cross_entropy) and every param's gradient, with and
  // without dropout, as built and after the training pipeline. Per node with floor 1e-4: gradients
  // are 1e-6–1e-2, and a gradient matmul cancels to 1e-6 from terms of 1e-2 (f32 sums of those are
  // off by ~1e-9); an indexing mistake is still off by the value itself.
  it('the tiny LLaMA training graph (loss and gradients), with dropout, before and after the training pipeline', async () => {
    const model = presetModel('tiny').build();
    for (const [what, g] of [
      ['', trainingGraph(model)],
      [', dropout 0.1', trainingGraph(model, { dropout: 0.1 })],
    ] as const)
      for (const [stage, graph] of [
        ['as built', g],
        ['after the pipeline', runPipeline(g, TRAIN_PIPELINE).graph],
      ] as const) {
        const label = `; ${stage}${what}`;
        const r = await checkBackend(backend, graph, { seed: 3, symbols: { seq: 6 } });
        expect(r.maxRelError, `${r.summary}${label}`).toBeLessThanOrEqual(tol.rel);
        const p = await checkBackend(backend, graph, { seed: 3, symbols: { seq: 6 }, perNode: true, tolerance: tol.perNode, floor: 1e-4 });
        expect(p.maxRelError, `${p.summary}${label}`).toBeLessThanOrEqual(tol.perNode);
      }
  });

  it('random tiny LLaMA variants, before and after the pipeline', async () => {
    await fc.assert(
      fc.asyncProperty(arbTinyLlama, fc.nat(), async (config, seed) => {
        const full = llama(config).build();
        const step = runPipeline(full, PIPELINE).graph;
        const r = await checkBackend(backend, full, { seed });
        expect(r.maxRelError, `${r.summary}; config ${JSON.stringify(config)}`).toBeLessThanOrEqual(tol.rel);
        await both(step, seed, undefined, `; config ${JSON.stringify(config)}`);
      }),
      { numRuns: runs.llamas },
    );
  });

  it(`prefill then decode steps (seq = 1 specialised${alternate ? ', the two programs alternating' : ''}) give the full pass logits`, async () => {
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
      const exe = alternate && p % 2 === 0 ? prefill : decode;
      const out = exe.run({ inputs: { tokens: Int32Array.of(tokens[p]!) }, symbols: { pos: p, seq: 1 }, state });
      rows.push(out['logits'] as Float32Array);
      state = Object.fromEntries(meta.states.map((s) => [s, out[`state:${s}`]!]));
    }
    const got = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    rows.reduce((at, r) => (got.set(r, at), at + r.length), 0);
    expect(maxRelError(hostTensor('f32', ref.shape, got), ref, 1e-2), `seed ${seed}`).toBeLessThanOrEqual(tol.rel);
  });
}

export function shapeOf(g: Graph, param: string): number[] {
  return g.nodes.find((n) => n.op === 'param' && n.attrs['name'] === param)!.type.shape as number[];
}
