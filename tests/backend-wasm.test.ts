import { afterAll, describe, expect, it } from 'vitest';
import type { Backend, Executable, HostArray } from '../backends/backend.js';
import { checkBackend } from '../backends/conformance.js';
import { jsBackend } from '../backends/js/index.js';
import { createWasmBackend, type WasmExecutable } from '../backends/wasm/index.js';
import { emitModule } from '../backends/wasm/emit.js';
import { loadBinaryen } from '../backends/wasm/fn.js';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import { hostTensor, maxRelError } from '../graph/tensor.js';
import { runPipeline } from '../passes/manager.js';
import { fuseSwiglu } from '../passes/fuse-swiglu.js';
import { PIPELINE } from '../passes/pipeline.js';
import { llama } from '../src/dsl/llama.js';
import { PRESETS, presetModel } from '../src/dsl/presets.js';
import { Session } from '../src/runtime/session.js';
import { randomWeights } from '../src/runtime/weights.js';
import { conformanceSuite } from './conformance-suite.js';
import { mulberry32 } from './seeded-random.js';

/**
 * Tolerances for the wasm backend.
 * - End to end, relative 1e-4 with floor 1e-2 (as for js): every intermediate is f32 either way.
 * - Per node, 1e-3 with floor 1e-6 (js: 1e-5). The wasm matmuls accumulate in f32 (js: f64) in
 *   another order (4 lanes, even and odd k apart; relaxed madd rounds once where mul+add rounds
 *   twice), so a dot product over K terms of size ~1 is off by ~√K·6e-8 absolute; a result that
 *   cancels to ~1e-3 (swiglu's up·silu(gate) at K = 50) shows that as ~1.5e-4 relative. Elementwise
 *   ops, reductions, rmsnorm and rope compute in f64 (exp in the module, a few ulp) and differ only by the
 *   final rounding; softmax's and SwiGLU's exp run in f32 where their range allows (within 2–3
 *   ulp, tested below). Indexing mistakes are O(1) errors.
 */
const tol = { rel: 1e-4, perNode: 1e-3 };
const made: Executable[] = [];
/** Track executables so that their workers are stopped when the file is done. */
const tracked = (be: Backend): Backend => ({
  ...be,
  async compile(g, o) {
    const exe = await be.compile(g, o);
    made.push(exe);
    return exe;
  },
});
afterAll(() => made.forEach((e) => e.dispose?.()));

const BACKENDS: [string, Backend][] = [
  ['1 thread', tracked(createWasmBackend({ threads: 1 }))],
  ['2 threads', tracked(createWasmBackend({ threads: 2 }))],
];

/** The graph on 1 and 2 threads against the interpreter, end to end. */
async function onEveryBackend(g: Graph, seed: number): Promise<void> {
  for (const [, backend] of BACKENDS) {
    const r = await checkBackend(backend, g, { seed });
    expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
  }
}

describe.each(BACKENDS)('wasm backend (%s): conformance against the interpreter', (_name, backend) => {
  conformanceSuite(backend, { tol, runs: { graphs: 60, fused: 40, llamas: 10 }, alternate: true });
});

function stateGraph(): Graph {
  const b = new GraphBuilder('step');
  const cache = b.add('state', [], { name: 'cache', dtype: 'f32', shape: [6, 2] });
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 2] });
  const upd = b.add('update_slice', [cache, x], { axis: 0, start: sym('pos') });
  b.output('y', b.add('sum', [upd], { axis: 0 }));
  b.output('state:cache', upd);
  return b.build();
}

describe('wasm backend specifics', () => {
  const be = BACKENDS[0]![1];

  it('source is the WAT text of the module, binary its bytes; both plain and relaxed SIMD agree with the interpreter', async () => {
    const g = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
    const exe = await be.compile(g);
    expect(exe.source).toMatch(/^\(module/);
    expect(exe.source).toContain('(export "run"');
    expect(exe.source).toContain('f32x4');
    expect(Array.from(exe.binary!.slice(0, 4))).toEqual([0, 0x61, 0x73, 0x6d]);
    for (const relaxedSimd of [false, true]) {
      const r = await checkBackend(tracked(createWasmBackend({ threads: 1, relaxedSimd })), g, { seed: 4, symbols: { seq: 4, pos: 3 } });
      expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
    }
  });

  it('update_slice of a state writes in place: the state output is the caller buffer', async () => {
    const exe = await be.compile(stateGraph());
    exe.setWeights({});
    const cache = new Float32Array(12);
    const out = exe.run({ inputs: { x: Float32Array.of(1, 2, 3, 4) }, symbols: { seq: 2, pos: 1 }, state: { cache } });
    expect(out['state:cache']).toBe(cache);
    expect([...cache]).toEqual([0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
    expect([...(out['y'] as Float32Array)]).toEqual([4, 6]);
    // a new array is copied in: the module's resident copy is not reused for it
    const fresh = new Float32Array(12).fill(1);
    const out2 = exe.run({ inputs: { x: Float32Array.of(5, 6) }, symbols: { seq: 1, pos: 0 }, state: { cache: fresh } });
    expect([...(out2['y'] as Float32Array)]).toEqual([10, 11]);
  });

  it('writes an output into the caller’s array (RunArgs.into), and names a wrong one', async () => {
    const exe = await be.compile(stateGraph());
    exe.setWeights({});
    const y = new Float32Array(5).fill(-1);
    const run = (x: number[], into: Record<string, HostArray>) =>
      exe.run({ inputs: { x: Float32Array.from(x) }, symbols: { seq: x.length / 2, pos: 0 }, state: { cache: new Float32Array(12) }, into });
    const out = run([1, 2, 3, 4], { y });
    expect(out['y']).not.toBe(y); // two of its five elements: a view of them
    expect((out['y'] as Float32Array).buffer).toBe(y.buffer);
    expect([...y]).toEqual([4, 6, -1, -1, -1]);
    const exact = new Float32Array(2);
    expect(run([5, 6], { y: exact })['y']).toBe(exact);
    expect([...exact]).toEqual([5, 6]);
    expect(() => run([1, 2], { y: new Int32Array(2) })).toThrow(/into\['y'\]: expected a Float32Array of at least 2 values for output 'y', given Int32Array of 2/);
    expect(() => run([1, 2, 3, 4], { y: new Float32Array(1) })).toThrow(/into\['y'\]: expected a Float32Array of at least 2 values/);
  });

  it('a state region the memory never wrote takes a zero array without a copy, and nothing else', async () => {
    // y = Σ rows of the cache after writing x at pos: it shows whatever the region held.
    const x = { x: Float32Array.of(1, 2) };
    const at0 = { seq: 1, pos: 0 };
    // first run, a nonzero array (not flagged): copied in, as the scan finds a nonzero element
    const a = await be.compile(stateGraph());
    a.setWeights({});
    expect([...(a.run({ inputs: x, symbols: at0, state: { cache: new Float32Array(12).fill(0.5) } })['y'] as Float32Array)]).toEqual([3.5, 4.5]);
    // first run, a zero array flagged fresh: taken as the region's zeros
    const b = await be.compile(stateGraph());
    b.setWeights({});
    expect([...(b.run({ inputs: x, symbols: at0, state: { cache: new Float32Array(12) }, freshState: ['cache'] })['y'] as Float32Array)]).toEqual([1, 2]);
    // the region now holds the row written at 0: a new zero array, even flagged fresh, is copied in
    const c = new Float32Array(12);
    expect([...(b.run({ inputs: { x: Float32Array.of(3, 4) }, symbols: { seq: 1, pos: 1 }, state: { cache: c }, freshState: ['cache'] })['y'] as Float32Array)]).toEqual([3, 4]);
    expect([...c]).toEqual([0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('run checks inputs, symbols and bounds with kiln error codes', async () => {
    const exe = await be.compile(stateGraph());
    exe.setWeights({});
    const state = { cache: new Float32Array(12) };
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(KilnError);
        return (e as KilnError).code;
      }
      return 'no error';
    };
    expect(code(() => exe.run({ inputs: { x: new Float32Array(3) }, symbols: { seq: 2, pos: 0 }, state }))).toBe('K1017');
    expect(code(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2, pos: 5 }, state }))).toBe('K1009');
    expect(code(() => exe.run({ inputs: { x: new Float32Array(4) }, symbols: { seq: 2, pos: 0 } }))).toBe('K1017');
  });

  it('an unknown fused pattern is a compile error naming it and the backend (K1019)', async () => {
    const b = new GraphBuilder('g');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3] });
    const body = new GraphBuilder('body');
    body.output('out', body.add('exp', [body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [3] })]));
    b.output('y', b.add('fused', [x], { pattern: 'flash_attention', body: body.build() as never }));
    const err = await be.compile(b.build()).catch((e: unknown) => e);
    expect((err as KilnError).code).toBe('K1019');
    expect((err as KilnError).message).toMatch(/^wasm backend: no kernel for fused pattern 'flash_attention'/);
  });

  it('matmul and matvec over packed weights at odd sizes match the interpreter on 1 and 2 threads', async () => {
    for (const [M, N, K] of [
      [1, 33, 17],
      [2, 16, 1],
      [5, 100, 31],
      [1, 1, 3],
      // one row reads MV_STREAMS runs of panels side by side: runs with panels left over, a
      // partial last panel inside a run, and exactly one panel per run
      [1, 149, 20],
      [1, 115, 9],
      [1, 64, 8],
    ] as const) {
      const b = new GraphBuilder(`mm ${M}x${N}x${K}`);
      b.output('y', b.add('matmul', [b.add('input', [], { name: 'a', dtype: 'f32', shape: [M, K] }), b.add('param', [], { name: 'w', dtype: 'f32', shape: [N, K] })], { transB: true }));
      await onEveryBackend(b.build(), M * N + K);
    }
  });
});

describe('wasm: tiled matmuls over unpacked operands', () => {
  // mm_nn (4×8 tiles) and mm_nt (2×4 tiles, K a multiple of 4) with their edges: batched, as attention runs them.
  it('match the interpreter at sizes around the tiles, both layouts, 1 and 2 threads', async () => {
    for (const [M, N, K] of [
      [4, 8, 4],
      [9, 19, 8],
      [3, 5, 7],
      [6, 12, 12],
      [1, 9, 1],
      [1, 40, 8],
      [5, 33, 12],
    ] as const)
      for (const transB of [false, true]) {
        const b = new GraphBuilder(`mm ${M}x${N}x${K}${transB ? ' transB' : ''}`);
        const x = b.add('input', [], { name: 'a', dtype: 'f32', shape: [2, M, K] });
        const y = b.add('input', [], { name: 'b', dtype: 'f32', shape: transB ? [2, N, K] : [2, K, N] });
        b.output('y', b.add('matmul', [x, y], { transB }));
        await onEveryBackend(b.build(), M * N + K);
      }
  });
});

describe('wasm: the KV cache read in place', () => {
  // The step graph reads K and V back as slices [0, pos + seq) of the updated caches, and V
  // through a head swap: the layout makes the slices views and leaves the swap to p·v's strides.
  const step = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
  const layers = step.nodes.filter((n) => n.op === 'state').length / 2;

  it('takes every cache slice as a view and every V head swap as strides, but not when values are read back', async () => {
    const b = await loadBinaryen();
    const lay = emitModule(b, step, { threads: 1, relaxed: false }).layout;
    const ops = (ids: Set<number>) => [...ids].map((id) => step.nodes[id]!.op);
    expect(ops(lay.views)).toEqual(new Array(2 * layers).fill('slice'));
    expect(ops(lay.swaps)).toEqual(new Array(layers).fill('transpose'));
    const debug = emitModule(b, step, { threads: 1, relaxed: false, debugValues: true }).layout;
    expect(debug.swaps.size).toBe(0);
  });

  it('reads K through its head swap too when the scores are not fused (transB with strides)', async () => {
    const unfused = runPipeline(presetModel('tiny').build(), PIPELINE.filter((p) => p.name !== 'fuse-rope-qk')).graph;
    const lay = emitModule(await loadBinaryen(), unfused, { threads: 1, relaxed: false }).layout;
    const swapped = [...lay.swaps].map((id) => unfused.nodes.find((n) => n.inputs[1] === id && n.op === 'matmul')!.attrs['transB'] === true);
    expect(swapped.sort()).toEqual([...new Array(layers).fill(false), ...new Array(layers).fill(true)]);
    for (const [, backend] of BACKENDS) {
      const r = await checkBackend(backend, unfused, { seed: 8, symbols: { seq: 3, pos: 11 } });
      expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
    }
  });

  it('gives the interpreter’s logits at every position it reads back', async () => {
    for (const [seed, symbols] of [
      [4, { seq: 1, pos: 0 }],
      [5, { seq: 1, pos: 31 }],
      [6, { seq: 4, pos: 9 }],
    ] as const)
      for (const [, backend] of BACKENDS) {
        const r = await checkBackend(backend, step, { seed, symbols });
        expect(r.maxRelError, r.summary).toBeLessThanOrEqual(tol.rel);
      }
  });

  // Up to KV_ROWS_MAX query rows per kv head walk the cache row by row (mm_kvt, mm_kvn), more go
  // head by head: group sizes 1 (MHA), 2 (GQA) and 6 (MQA), rows per head on either side of 8.
  it.each([
    ['MHA 3/3', { nHeads: 3, nKvHeads: 3 }],
    ['GQA 4/2', { nHeads: 4, nKvHeads: 2 }],
    ['MQA 6/1', { nHeads: 6, nKvHeads: 1 }],
  ] as const)('reads the cache row by row for a few rows per head, head by head for more (%s)', async (_, heads) => {
    const g = runPipeline(llama({ ...PRESETS['tiny']!, ...heads, dim: 48 }).build(), PIPELINE).graph;
    for (const seq of [1, 2, 5, 9]) {
      const r = await checkBackend(BACKENDS[0]![1], g, { seed: seq, symbols: { seq, pos: 17 } });
      expect(r.maxRelError, `seq ${seq}: ${r.summary}`).toBeLessThanOrEqual(tol.rel);
    }
  });
});

describe('wasm: swiglu over packed weights', () => {
  // swiglu_pk: pairs of rows take half panels, a last odd row the whole panel; N not a multiple of 16.
  it('matches the interpreter at odd sizes on 1 and 2 threads, and reads W1/W3 packed', async () => {
    for (const [M, N, K] of [
      [1, 37, 13],
      [2, 16, 5],
      [3, 40, 9],
      [5, 7, 1],
    ] as const) {
      const b = new GraphBuilder(`swiglu ${M}x${N}x${K}`);
      const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [M, K] });
      const lin = (name: string) => b.add('matmul', [x, b.add('param', [], { name, dtype: 'f32', shape: [N, K] })], { transB: true });
      b.output('y', b.add('mul', [b.add('silu', [lin('w1')], {}), lin('w3')], {}));
      const { graph } = runPipeline(b.build(), [fuseSwiglu]);
      expect(graph.nodes.some((n) => n.op === 'fused' && n.attrs['pattern'] === 'swiglu')).toBe(true);
      await onEveryBackend(graph, M * N + K);
      // one thread: binaryen inlines the kernel into run; threaded, par_run dispatches to it by name
      expect((await BACKENDS[1]![1].compile(graph)).source).toMatch(/call \$swiglu_pk_silu/);
    }
  });
});

describe('wasm: SiLU in f32 inside swiglu', () => {
  // silu4 computes SwiGLU's gate in f32 four lanes at a time. With x = [v, 1], W1 rows [2^j, 0]
  // and W3 rows [0, 1], each output is silu of one exact product v·2^j, times 1: within 3 ulp of
  // the f64 value rounded to f32 on ~100,000 inputs, and exactly it beyond ±87 (below −87 a lane
  // goes the f64 way), at ±0, ±∞ and NaN.
  it.each(BACKENDS)('is within 3 ulp of f64 SiLU rounded to f32, exact at the edges (%s)', async (_, backend) => {
    const [M, N] = [2701, 37];
    const b = new GraphBuilder('silu4');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [M, 2] });
    const lin = (name: string) => b.add('matmul', [x, b.add('param', [], { name, dtype: 'f32', shape: [N, 2] })], { transB: true });
    b.output('y', b.add('mul', [b.add('silu', [lin('w1')], {}), lin('w3')], {}));
    const { graph } = runPipeline(b.build(), [fuseSwiglu]);
    const exe = await backend.compile(graph);
    const scale = Float32Array.from({ length: N }, (_, n) => 2 ** ((n % 16) - 8));
    exe.setWeights({ w1: Float32Array.from({ length: 2 * N }, (_, i) => (i % 2 ? 0 : scale[i >> 1]!)), w3: Float32Array.from({ length: 2 * N }, (_, i) => i % 2) });
    const edges = [0, -0, 1e-30, -1e-30, 86.9, 87, 87.1, 88, 89, 1e30, -86.9, -87, -87.1, -88, -100, -103, -104, -110, -150, -1e30, Infinity, -Infinity, NaN];
    const u = mulberry32(5);
    const vs = Float32Array.from({ length: M }, (_, i) => (i < edges.length ? edges[i]! : (u() - 0.5) * (i % 3 ? 16 : 400)));
    const y = exe.run({ inputs: { x: Float32Array.from({ length: 2 * M }, (_, i) => (i % 2 ? 1 : vs[i >> 1]!)) }, symbols: {} })['y'] as Float32Array;
    const bits = new Int32Array(new Float32Array(1).buffer);
    const ulps = (a: number, c: number) => {
      if (a === c || (Number.isNaN(a) && Number.isNaN(c))) return 0; // ±0 alike: the matmul sums from +0
      if (Number.isNaN(a) || Number.isNaN(c) || Math.sign(a) !== Math.sign(c)) return Infinity;
      const f = new Float32Array(bits.buffer);
      f[0] = a;
      const ia = bits[0]!;
      f[0] = c;
      return Math.abs(ia - bits[0]!);
    };
    const bad: string[] = [];
    for (let r = 0; r < M; r++)
      for (let n = 0; n < N; n++) {
        const g = Math.fround(vs[r]! * scale[n]!);
        const want = Math.fround(Math.fround(g / (1 + Math.exp(-g))) * (vs[r]! * 0 + 1));
        const d = ulps(y[r * N + n]!, want);
        const exact = !(Math.abs(g) <= 87) || g === 0; // beyond ±87, 0 and NaN: the value itself
        if (d > (exact ? 0 : 3) && bad.length < 5) bad.push(`silu(${g}) = ${y[r * N + n]}, want ${want} (${d} ulp)`);
      }
    expect(bad).toEqual([]);
  });
});

describe('wasm: rope tables', () => {
  // The cos/sin tables grow (doubling) when a run's positions pass their rows; positions below 0
  // are computed directly. Any order of positions must give the interpreter's rotation.
  it.each(BACKENDS)('rope at growing, shrinking and negative positions matches the interpreter (%s)', async (_, backend) => {
    const b = new GraphBuilder('rope positions');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 2, 6] });
    b.output('y', b.add('rope', [x], { base: 10000, layout: 'interleaved', offset: { terms: { pos: 1 }, offset: -3 } }));
    b.output('z', b.add('rope', [x], { base: 500, layout: 'half', offset: 0 }));
    const g = b.build();
    const exe = await backend.compile(g);
    exe.setWeights({});
    for (const [pos, seq] of [[5, 4], [300, 3], [2, 2], [1000, 5], [0, 1]] as const) {
      const xs = Float32Array.from({ length: seq * 12 }, (_, i) => Math.sin(i + pos));
      const got = exe.run({ inputs: { x: xs }, symbols: { pos, seq } });
      const ref = interpret(g, { inputs: { x: hostTensor('f32', [seq, 2, 6], xs) }, symbols: { pos } });
      for (const o of ['y', 'z']) expect(maxRelError(hostTensor('f32', [seq, 2, 6], got[o] as Float32Array), ref[o]!, 1e-6), `${o} at pos ${pos}`).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('wasm: exp and softmax in the module', () => {
  // exp64 (scalar), exp64x2 and softmax_row's inline pair are one polynomial; rounded to f32, exp
  // must be Math.exp's value (the js backend's), edge cases included.
  it('exp rounds to Math.exp\'s f32 on 100,000 inputs and the edges', async () => {
    const edges = [0, -0, 1e-30, -1e-30, 0.5, -0.5, 88.7, 88.8, -87, -103.9, -745, -746, -747, 708, 709, 710, -Infinity, Infinity, NaN];
    const n = 100_000;
    const u = mulberry32(7);
    const xs = Float32Array.from({ length: n }, (_, i) => (i < edges.length ? edges[i]! : (u() - 0.5) * (i % 3 ? 24 : 1600)));
    const b = new GraphBuilder('exp');
    b.output('y', b.add('exp', [b.add('input', [], { name: 'x', dtype: 'f32', shape: [n] })], {}));
    const exe = await BACKENDS[0]![1].compile(b.build());
    exe.setWeights({});
    const y = exe.run({ inputs: { x: xs }, symbols: {} })['y'] as Float32Array;
    const bad = [...xs].map((x, i) => [x, Math.fround(Math.exp(x)), y[i]!] as const).filter(([, want, got]) => !Object.is(want, got));
    expect(bad.slice(0, 5)).toEqual([]);
  });

  // Rows of every length mod 4, a causal mask's −∞, exps below and above exp64's fast range, and
  // a NaN: the vector path, its lane-by-lane fallback and the scalar tail.
  it.each(BACKENDS)('softmax along the last axis matches the interpreter at odd lengths, masked and extreme (%s)', async (_, backend) => {
    for (const len of [1, 3, 4, 7, 130]) {
      const b = new GraphBuilder(`softmax ${len}`);
      const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3, 5, len] });
      b.output('y', b.add('softmax', [b.add('causal_mask', [x], { offset: len - 5 })], { axis: -1 }));
      const g = b.build();
      const exe = await backend.compile(g);
      exe.setWeights({});
      const xs = Float32Array.from({ length: 15 * len }, (_, i) => Math.sin(i) * (i % 7 === 0 ? 800 : 3));
      const got = exe.run({ inputs: { x: xs }, symbols: {} })['y'] as Float32Array;
      const ref = interpret(g, { inputs: { x: hostTensor('f32', [3, 5, len], xs) }, symbols: {} });
      expect(maxRelError(hostTensor('f32', [3, 5, len], got), ref['y']!, 1e-6), `length ${len}`).toBeLessThanOrEqual(1e-6);
      xs[0] = Number.NaN;
      const nan = exe.run({ inputs: { x: xs }, symbols: {} })['y'] as Float32Array;
      expect([...nan.subarray(0, len)].every(Number.isNaN), `a NaN in a row of ${len}`).toBe(true);
    }
  });
});

describe('wasm: softmax in f32', () => {
  // Rows whose every x − max lies in [−80, 0] take exp in f32 four lanes at a time (expF32).
  it.each(BACKENDS)('is within 4 ulp of the f64 softmax rounded to f32 where exp runs in f32 (%s)', async (_, backend) => {
    const [rows, len] = [60, 67];
    const b = new GraphBuilder('softmax f32');
    b.output('y', b.add('softmax', [b.add('input', [], { name: 'x', dtype: 'f32', shape: [rows, len] })], { axis: -1 }));
    const g = b.build();
    const exe = await backend.compile(g);
    exe.setWeights({});
    const u = mulberry32(11);
    const xs = Float32Array.from({ length: rows * len }, (_, i) => (i % len === 0 ? 0 : -80 * u()));
    const got = exe.run({ inputs: { x: xs }, symbols: {} })['y'] as Float32Array;
    const want = Float32Array.from(interpret(g, { inputs: { x: hostTensor('f32', [rows, len], xs) }, symbols: {} })['y']!.data as ArrayLike<number>);
    const bits = (a: Float32Array) => new Int32Array(a.buffer, a.byteOffset, a.length);
    const [gb, wb] = [bits(got), bits(want)];
    let worst = 0;
    for (let i = 0; i < gb.length; i++) worst = Math.max(worst, Math.abs(gb[i]! - wb[i]!));
    expect(worst).toBeLessThanOrEqual(4);
  });
});

describe('wasm: the training kernels against the interpreter, closer than the per-node tolerance', () => {
  /** The graph's output `y` on the backend and in the interpreter (rounded to f32). */
  const both = async (backend: Backend, g: Graph, inputs: Record<string, Float32Array | Int32Array>) => {
    const exe = await backend.compile(g);
    exe.setWeights({});
    const got = exe.run({ inputs, symbols: {} })['y'] as Float32Array;
    const shapes = Object.fromEntries(g.nodes.filter((n) => n.op === 'input').map((n) => [String(n.attrs['name']), n]));
    const ref = interpret(g, { inputs: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, hostTensor(shapes[k]!.type.dtype, shapes[k]!.type.shape as number[], v)])), symbols: {} })['y']!;
    return { got, want: Float32Array.from(ref.data as ArrayLike<number>), shape: ref.shape };
  };

  // f64 sums in position order, as the interpreter's: the same bits, however many repeat.
  it.each(BACKENDS)('scatter_add is the interpreter’s sum bit for bit, with many repeated indices (%s)', async (_, backend) => {
    const [n, rows, row] = [2003, 7, 37];
    const b = new GraphBuilder('scatter_add repeats');
    b.output('y', b.add('scatter_add', [b.add('input', [], { name: 'ids', dtype: 'i32', shape: [n] }), b.add('input', [], { name: 'g', dtype: 'f32', shape: [n, row] })], { rows }));
    const u = mulberry32(3);
    const { got, want } = await both(backend, b.build(), {
      ids: Int32Array.from({ length: n }, () => Math.floor(u() * (rows - 1))), // the last row is never named: zeros
      g: Float32Array.from({ length: n * row }, () => (u() - 0.5) * 1e3),
    });
    expect(got).toEqual(want);
    expect(got.subarray((rows - 1) * row).every((v) => v === 0)).toBe(true);
  });

  // A sum over the sequence axis goes 8 lanes at a time; each lane still adds in index order.
  it.each(BACKENDS)('sum and mean over axis 0 of [300, 1003] are the interpreter’s bit for bit (%s)', async (_, backend) => {
    for (const op of ['sum', 'mean'] as const) {
      const b = new GraphBuilder(`${op} axis 0`);
      b.output('y', b.add(op, [b.add('input', [], { name: 'x', dtype: 'f32', shape: [300, 1003] })], { axis: 0 }));
      const u = mulberry32(4);
      const { got, want } = await both(backend, b.build(), { x: Float32Array.from({ length: 300 * 1003 }, () => u() - 0.5) });
      expect(got, op).toEqual(want);
    }
  });

  // exp in f32 four lanes at a time (within 2 ulp), the sum and the log in f64: the loss within
  // 1e-6 of the f64 value, for logits of every scale (below −87 past the max, exp goes in f64).
  it.each(BACKENDS)('cross_entropy is within 1e-6 of the f64 loss at vocabulary-sized rows (%s)', async (_, backend) => {
    const [R, V] = [24, 1003];
    const b = new GraphBuilder('cross_entropy rows');
    b.output('y', b.add('cross_entropy', [b.add('input', [], { name: 'x', dtype: 'f32', shape: [R, V] }), b.add('input', [], { name: 't', dtype: 'i32', shape: [R] })]));
    const u = mulberry32(5);
    const scale = [0.01, 1, 10, 80, 300, 3000];
    const { got, want, shape } = await both(backend, b.build(), {
      x: Float32Array.from({ length: R * V }, (_, i) => (u() - 0.5) * scale[Math.floor(i / V) % scale.length]!),
      t: Int32Array.from({ length: R }, () => Math.floor(u() * V)),
    });
    expect(maxRelError(hostTensor('f32', shape, got), hostTensor('f32', shape, want), 1e-6)).toBeLessThanOrEqual(1e-6);
  });
});

describe('wasm: degenerate programs', () => {
  // Found by `kiln fuzz --backends js,wasm --runs 200 --seed 1`: a graph with no outputs becomes an
  // empty program after dce, and the threaded build needed a node to build its helpers from.
  it.each(BACKENDS)('an empty program compiles and runs (%s)', async (_, backend) => {
    const g: Graph = { name: 'empty', nodes: [], outputs: [], meta: {} };
    const exe = await backend.compile(g);
    exe.setWeights({});
    expect(exe.run({ inputs: {}, symbols: {} })).toEqual({});
  });
});

describe('wasm: one memory for the prefill and decode programs', () => {
  // A Session compiles the decode program with shareWith: the prefill program. The two run over one
  // memory (one copy of the weights); the rope tables and the resident KV state are shared
  // bookkeeping, so switching programs, rolling back and re-prefilling must give the js backend's
  // tokens. Threaded, each program posts to its own job area, watched by its own worker.
  const tokens = async (s: Session, prompt: number[], n: number) => {
    const out: number[] = [];
    for await (const t of s.generate(prompt, { maxTokens: n })) out.push(t.token);
    return out;
  };
  it.each(BACKENDS)('shares one memory, and gives the js tokens through rollbacks (%s)', async (_, backend) => {
    const g = presetModel('tiny').build();
    const weights = randomWeights(g, 3);
    const ref = await Session.create(g, { backend: jsBackend, weights, maxSeqLen: 160 });
    const s = await Session.create(g, { backend, weights, maxSeqLen: 160 });
    const { prefill: pre, decode: dec } = s.executables as { prefill: WasmExecutable; decode: WasmExecutable };
    expect(pre.share.memory === dec.share.memory).toBe(true);
    expect([pre.manifest.jobArea ?? 0, dec.manifest.jobArea ?? 0]).toEqual([0, 1]);
    // The Session bound the weights once, through the prefill program: the decode program holds them too.
    expect([pre.sharesWeights, dec.sharesWeights]).toEqual([false, true]);
    // Long runs grow the rope tables (64 rows, then doubling) in one program and not in the other:
    // decoding past 128 positions, then a short prefill, then decoding past them again.
    const long = (n: number, k: number) => Array.from({ length: n }, (_, i) => ((i * k) % 60) + 3);
    for (const [prompt, n] of [[[1, 2, 3], 140], [[1, 2], 140], [long(70, 7), 10], [long(66, 11), 30]] as const) {
      ref.rollback(0);
      s.rollback(0);
      expect(await tokens(s, [...prompt], n), `prompt of ${prompt.length}`).toEqual(await tokens(ref, [...prompt], n));
    }
  });

  it('a program over another’s memory needs no weights of its own; one with another layout does', async () => {
    const g = runPipeline(presetModel('tiny').build(), PIPELINE).graph;
    const weights = randomWeights(g, 5);
    const be = BACKENDS[0]![1];
    const pre = (await be.compile(g)) as WasmExecutable;
    const dec = (await be.compile(g, { specialize: { seq: 1 }, shareWith: pre })) as WasmExecutable;
    const alone = (await be.compile(runPipeline(presetModel('tiny').build(), PIPELINE, { maxSeqLen: 64 }).graph, { shareWith: pre })) as WasmExecutable;
    expect([dec.sharesWeights, alone.sharesWeights]).toEqual([true, false]);
    const run = (exe: WasmExecutable) => exe.run({ inputs: { tokens: Int32Array.of(4) }, symbols: { seq: 1, pos: 0 }, state: {} });
    expect(() => run(dec)).toThrow(/weights not bound/);
    pre.setWeights(weights);
    const ref = await be.compile(g, { specialize: { seq: 1 } });
    ref.setWeights(weights);
    const st = (exe: WasmExecutable) => exe.run({ inputs: { tokens: Int32Array.of(4) }, symbols: { seq: 1, pos: 0 }, state: Object.fromEntries((g.meta['kvCache'] as { states: string[] }).states.map((n) => [n, new Float32Array(32 * 2 * 8)])) })['logits'];
    expect(st(dec)).toEqual(st(ref as WasmExecutable));
    expect(() => st(alone)).toThrow(/weights not bound/);
  });
});
