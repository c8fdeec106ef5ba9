/**
 * The gpu backend's fused rope_qk and swiglu kernels (used for bodies of the js kernels' form,
 * equal to the interpreter on random shapes and inputs) and its device-resident state: a decode
 * uploads the KV caches once, reads back only the rows it wrote, and still gives the js backend's
 * tokens; a new array (a reset) or a rollback is honoured. Skipped loudly per device, as in
 * backend-gpu.test.ts (tests/stacks.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Executable, HostArray } from '../backends/backend.js';
import { checkBackend } from '../backends/conformance.js';
import { emitModule } from '../backends/gpu/emit.js';
import { GPU_TOLERANCE, gpuBackend, pickDevice, stateTraffic } from '../backends/gpu/index.js';
import { jsBackend } from '../backends/js/index.js';
import { GraphBuilder } from '../graph/builder.js';
import { type Dim, dimAdd, dimScale, sym } from '../graph/dim.js';
import type { Graph } from '../graph/graph.js';
import type { Attrs } from '../graph/ops.js';
import { llama } from '../src/dsl/llama.js';
import { needs } from './stacks.js';
import { presetModel } from '../src/dsl/presets.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights } from '../src/runtime/weights.js';

const seq = sym('seq');
const pos = sym('pos');

function fusedGraph(name: string, pattern: string, operands: (b: GraphBuilder) => number[], fn: (body: GraphBuilder, args: number[]) => number): Graph {
  const b = new GraphBuilder(name);
  const ops = operands(b);
  const body = new GraphBuilder(`${pattern}.body`);
  const args = ops.map((o, i) => body.add('input', [], { name: `arg${i}`, dtype: 'f32', shape: [...b.typeOf(o).shape] }));
  body.output('out', fn(body, args));
  b.output('y', b.add('fused', ops, { pattern, body: body.build() as unknown as Attrs[string] }));
  return b.build();
}

interface RopeCase {
  Hkv: number;
  g: number;
  D: number;
  seq: number;
  pos: number;
  qHalf: boolean;
  kHalf: boolean;
  qBase: number;
  kBase: number;
  kOffset: number;
  /** Whether k is rotated in the kernel (the full graph) or comes rotated (the step graph's cache). */
  kRope: boolean;
}

/** rope(q)·rope(k)ᵀ (or rope(q)·kᵀ) as fuse-rope-qk writes it: q[seq, H, D] at pos, k[pos + seq, Hkv, D] at kOffset. */
function ropeQkGraph(c: RopeCase): Graph {
  const H = c.Hkv * c.g;
  const rope = (base: number, half: boolean, offset: Dim) => ({ base, layout: half ? 'half' : 'interleaved', offset });
  return fusedGraph(
    'rope_qk',
    'rope_qk',
    (b) => [b.add('input', [], { name: 'q', dtype: 'f32', shape: [seq, H, c.D] }), b.add('input', [], { name: 'k', dtype: 'f32', shape: [dimAdd(pos, seq), c.Hkv, c.D] })],
    (body, [q, k]) => {
      const qr = body.add('transpose', [body.add('rope', [q!], rope(c.qBase, c.qHalf, pos))], { perm: [1, 0, 2] });
      const qg = H === c.Hkv ? qr : body.add('reshape', [qr], { shape: [c.Hkv, dimScale(seq, c.g), c.D] });
      const kr = body.add('transpose', [c.kRope ? body.add('rope', [k!], rope(c.kBase, c.kHalf, c.kOffset)) : k!], { perm: [1, 0, 2] });
      return body.add('matmul', [qg, kr], { transB: true });
    },
  );
}

function swigluGraph(M: number, F: number, K: number, act: 'silu' | 'gelu' | 'relu', upFirst: boolean): Graph {
  return fusedGraph(
    'swiglu',
    'swiglu',
    (b) => [b.add('input', [], { name: 'x', dtype: 'f32', shape: [M, K] }), b.add('param', [], { name: 'w1', dtype: 'f32', shape: [F, K] }), b.add('param', [], { name: 'w3', dtype: 'f32', shape: [F, K] })],
    (body, [x, w1, w3]) => {
      const gate = body.add(act, [body.add('matmul', [x!, w1!], { transB: true })]);
      const up = body.add('matmul', [x!, w3!], { transB: true });
      return body.add('mul', upFirst ? [up, gate] : [gate, up]);
    },
  );
}

/** The fused node runs as one kernel of its own: no decomposition note, and a kernel under its id. */
function expectOneKernel(g: Graph): void {
  const { source, notes } = emitModule(g);
  expect(notes).toEqual([]);
  const id = g.nodes.find((n) => n.op === 'fused')!.id;
  expect(source).toContain(`K[${id}] = kernel(`);
  expect(source.match(/K\[\d+\] = kernel\(/g)).toHaveLength(1);
}

describe.each(['headlessgl', 'webgpu'] as const)('gpu backend on %s: fused kernels and resident state', (device) => {
  const backend = gpuBackend({ device });

  it('fused rope_qk is one kernel and matches the interpreter on random shapes', async (ctx) => {
    await needs(ctx, device);
    const arb = fc.record({
      Hkv: fc.integer({ min: 1, max: 3 }),
      g: fc.integer({ min: 1, max: 3 }),
      D: fc.integer({ min: 1, max: 8 }).map((x) => 2 * x),
      seq: fc.integer({ min: 1, max: 4 }),
      pos: fc.integer({ min: 0, max: 6 }),
      qHalf: fc.boolean(),
      kHalf: fc.boolean(),
      qBase: fc.constantFrom(10000, 500000, 10),
      kBase: fc.constantFrom(10000, 500000, 10),
      kOffset: fc.integer({ min: 0, max: 3 }),
      kRope: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(arb, fc.nat(), async (c, seed) => {
        const g = ropeQkGraph(c);
        expectOneKernel(g);
        const r = await checkBackend(backend, g, { seed, symbols: { seq: c.seq, pos: c.pos } });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(GPU_TOLERANCE.rel);
      }),
      { numRuns: 10 },
    );
  }, 300_000);

  it('fused swiglu is one kernel and matches the interpreter on random shapes', async (ctx) => {
    await needs(ctx, device);
    const arb = fc.record({
      M: fc.integer({ min: 1, max: 6 }),
      F: fc.integer({ min: 1, max: 20 }),
      K: fc.integer({ min: 1, max: 70 }),
      act: fc.constantFrom('silu' as const, 'gelu' as const, 'relu' as const),
      upFirst: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(arb, fc.nat(), async (c, seed) => {
        const g = swigluGraph(c.M, c.F, c.K, c.act, c.upFirst);
        expectOneKernel(g);
        const r = await checkBackend(backend, g, { seed });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(GPU_TOLERANCE.rel);
      }),
      { numRuns: 10 },
    );
  }, 300_000);

  it('a body of another form runs as its decomposition, with a note', () => {
    const g = fusedGraph(
      'other',
      'swiglu',
      (b) => [b.add('input', [], { name: 'x', dtype: 'f32', shape: [2, 3] }), b.add('param', [], { name: 'w', dtype: 'f32', shape: [4, 3] })],
      (body, [x, w]) => body.add('silu', [body.add('matmul', [x!, w!], { transB: true })]),
    );
    expect(emitModule(g).notes.join('\n')).toMatch(/fused swiglu: runs as its decomposition/);
  });

  it('the tiny model step program uses the fused kernels', async () => {
    const g = presetModel('tiny').build();
    const s = await Session.create(g, { backend: jsBackend, weights: randomWeights(g, 7), maxSeqLen: 16 });
    const patterns = s.program.nodes.filter((n) => n.op === 'fused').map((n) => String(n.attrs['pattern']));
    expect(patterns).toContain('rope_qk');
    expect(patterns).toContain('swiglu');
    // causal_softmax is inlined by design (INLINED_PATTERNS), said once for its two nodes
    expect(emitModule(s.program).notes).toEqual(['fused causal_softmax (2 nodes): runs as its decomposition on this backend (one kernel per core op)']);
  });

  it('greedy tokens equal the js backend on a half-rope GQA model and an MQA gelu model', async (ctx) => {
    await needs(ctx, device);
    const configs = [
      { name: 'gqa', vocabSize: 48, dim: 24, nLayers: 2, nHeads: 6, nKvHeads: 3, hiddenDim: 40, maxSeqLen: 32, ropeLayout: 'half' as const },
      { name: 'mqa', vocabSize: 40, dim: 16, nLayers: 2, nHeads: 4, nKvHeads: 1, hiddenDim: 24, maxSeqLen: 32, norm: 'layer' as const, activation: 'gelu' as const },
    ];
    for (const config of configs) {
      const g = llama(config).build();
      const weights = randomWeights(g, 3);
      const gen = async (b: typeof backend) => {
        const s = await Session.create(g, { backend: b, weights });
        const got: number[] = [];
        for await (const step of s.generate([1, 2, 3], { maxTokens: 12 })) got.push(step.token);
        return got;
      };
      expect(await gen(backend), config.name).toEqual(await gen(jsBackend as unknown as typeof backend));
    }
  }, 300_000);

  it('resident state survives the kernels being rebuilt for larger symbols', async (ctx) => {
    await needs(ctx, device);
    const b = new GraphBuilder('grow');
    const cache = b.add('state', [], { name: 'cache', dtype: 'f32', shape: [8, 3] });
    const upd = b.add('update_slice', [cache, b.add('input', [], { name: 'x', dtype: 'f32', shape: [seq, 3] })], { axis: 0, start: pos });
    b.output('y', b.add('sum', [b.add('slice', [upd], { axis: 0, start: 0, end: dimAdd(pos, seq) })], { axis: 0 }));
    b.output('state:cache', upd);
    const g = b.build();
    const run = async (be: typeof backend) => {
      const exe = await be.compile(g);
      exe.setWeights({});
      let state: Record<string, HostArray> = { cache: new Float32Array(24) };
      const ys: number[][] = [];
      for (let p = 0; p < 8; p++) {
        const out = exe.run({ inputs: { x: Float32Array.from([p + 1, -p, 0.5 * p]) }, symbols: { seq: 1, pos: p }, state });
        state = { cache: out['state:cache']! };
        ys.push([...out['y']!]);
      }
      return { ys, cache: [...state['cache']!], exe };
    };
    const [want, got] = [await run(jsBackend as unknown as typeof backend), await run(backend)];
    expect(got.ys).toEqual(want.ys);
    expect(got.cache).toEqual(want.cache);
    expect(stateTraffic(got.exe)).toEqual({ uploads: 1, downloads: 0, rowReads: 8 });
  }, 120_000);

  it('decode keeps the KV state on the device, reads back only its rows, and gives the js tokens', async (ctx) => {
    await needs(ctx, device);
    const g = presetModel('tiny').build();
    const weights = randomWeights(g, 7);
    const program = (await Session.create(g, { backend: jsBackend, weights, maxSeqLen: 40 })).program;
    const seqSym = Object.keys((program.nodes.find((n) => n.attrs['name'] === 'tokens')!.type.shape[0] as { terms: Record<string, number> }).terms)[0]!;
    const states = program.nodes.filter((n) => n.op === 'state');
    const vocab = Number(program.nodes.find((n) => n.op === 'param' && n.attrs['name'] === 'tok_embeddings')?.type.shape[0] ?? 0) || undefined;

    /** Session's step, by hand: the state arrays the runs return become the state. */
    const driver = async (b: typeof backend) => {
      const pre = await b.compile(program);
      const dec = await b.compile(program, { specialize: { [seqSym]: 1 } });
      pre.setWeights(weights);
      dec.setWeights(weights);
      const fresh = () => Object.fromEntries(states.map((n) => [String(n.attrs['name']), new Float32Array(n.type.shape.reduce<number>((a, d) => a * Number(d), 1))]));
      let state: Record<string, HostArray> = fresh();
      let at = 0;
      const step = (tokens: number[]): Float32Array => {
        const exe: Executable = tokens.length === 1 ? dec : pre;
        const out = exe.run({ inputs: { tokens: Int32Array.from(tokens) }, symbols: { [seqSym]: tokens.length, pos: at }, state });
        for (const [k, v] of Object.entries(out)) if (k.startsWith('state:')) state[k.slice(6)] = v;
        at += tokens.length;
        const all = out['logits'] as Float32Array;
        return all.slice(all.length - (vocab ?? all.length));
      };
      const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best]! ? i : best), 0);
      return {
        pre,
        dec,
        state: () => state,
        reset: () => ((state = fresh()), (at = 0)),
        rollback: (p: number) => (at = p),
        greedy(prompt: number[], n: number): number[] {
          let t = argmax(step(prompt));
          const got = [t];
          for (let i = 1; i < n; i++) got.push((t = argmax(step([t]))));
          return got;
        },
      };
    };
    const js = await driver(jsBackend as unknown as typeof backend);
    const gpu = await driver(backend);
    const N = 16;
    const want = js.greedy([1, 2, 3], N);
    expect(gpu.greedy([1, 2, 3], N)).toEqual(want);
    // the caches went up once per executable; decode read back only the rows it wrote
    expect(stateTraffic(gpu.pre)).toEqual({ uploads: states.length, downloads: 0, rowReads: states.length });
    expect(stateTraffic(gpu.dec)).toEqual({ uploads: states.length, downloads: 0, rowReads: states.length * (N - 1) });
    // and the caller's arrays hold the state: the js backend's, within the gpu tolerance
    for (const n of states) {
      const name = String(n.attrs['name']);
      const [a, b] = [gpu.state()[name]!, js.state()[name]!];
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1e-3 + 1e-3 * Math.abs(b[i]!));
    }
    // a rollback (same arrays, earlier position) and then a reset (new arrays): still the js tokens
    js.rollback(2);
    gpu.rollback(2);
    expect(gpu.greedy([5], 6)).toEqual(js.greedy([5], 6));
    js.reset();
    gpu.reset();
    expect(gpu.greedy([7, 1], 6)).toEqual(js.greedy([7, 1], 6));
    // the new arrays went up: prefill took them, then decode took them after prefill had written them
    expect(stateTraffic(gpu.pre)!.uploads).toBe(2 * states.length);
    expect(stateTraffic(gpu.dec)!.uploads).toBe(2 * states.length);
    expect(stateTraffic(gpu.dec)!.downloads).toBe(0);
    gpu.pre.dispose?.();
    gpu.dec.dispose?.();
  }, 300_000);
});
