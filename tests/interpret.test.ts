/**
 * The interpreter's plumbing (binding tensors and symbols, reporting what is missing or the wrong
 * size) and the host tensor helpers. What each op computes is tests/ops.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { dimAdd, sym } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { type Bindings, interpret, interpretAll } from '../graph/interpret.js';
import { hostFromNested, hostTensor, maxRelError, numelOf } from '../graph/tensor.js';

const seq = sym('seq');
const pos = sym('pos');
const f32 = (shape: number[], data?: number[]) => hostTensor('f32', shape, data ?? new Array(numelOf(shape)).fill(1));

/** x[seq, 2] · w[3, 2]ᵀ + b[seq + pos]-length iota counting from pos, enough to exercise every kind of binding. */
function sample(): Graph {
  const g = new GraphBuilder('g');
  const x = g.add('input', [], { name: 'x', dtype: 'f32', shape: [seq, 2] });
  const w = g.add('param', [], { name: 'w', dtype: 'f32', shape: [3, 2] });
  const k = g.add('state', [], { name: 'k', dtype: 'f32', shape: [dimAdd(pos, seq), 3] });
  const y = g.add('matmul', [x, w], { transB: true });
  g.output('y', y);
  g.output('k2', g.add('mul', [k, k]));
  g.output('t', g.add('iota', [], { dtype: 'i32', shape: [seq], axis: 0, start: pos }));
  return g.build();
}

function kilnError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    return { code: e.code, message: e.message };
  }
  throw new Error('expected a KilnError');
}

const ok: Bindings = {
  inputs: { x: f32([2, 2], [1, 2, 3, 4]) },
  params: { w: f32([3, 2], [1, 0, 0, 1, 1, 1]) },
  state: { k: f32([5, 3]) },
  symbols: { pos: 3 },
};

describe('interpret', () => {
  test('binds seq from an input shape and pos from symbols; returns the outputs by name', () => {
    const out = interpret(sample(), ok);
    expect(Object.keys(out)).toEqual(['y', 'k2', 't']);
    expect({ shape: out.y!.shape, data: [...out.y!.data] }).toEqual({ shape: [2, 3], data: [1, 2, 3, 3, 4, 7] });
    expect(out.k2!.shape).toEqual([5, 3]);
    expect({ dtype: out.t!.dtype, data: [...out.t!.data] }).toEqual({ dtype: 'i32', data: [3, 4] });
  });

  test('interpretAll gives every node, intermediate ones included', () => {
    const all = interpretAll(sample(), ok);
    expect([...all.keys()]).toEqual([0, 1, 2, 3, 4, 5]);
    expect([...all.get(3)!.data]).toEqual([1, 2, 3, 3, 4, 7]);
  });

  test('does not write to the tensors it is given', () => {
    const x = f32([1, 2], [1, -2]);
    const g = new GraphBuilder('g');
    g.output('y', g.add('neg', [g.add('input', [], { name: 'x', dtype: 'f32', shape: [1, 2] })]));
    interpret(g.build(), { inputs: { x } });
    expect([...x.data]).toEqual([1, -2]);
  });

  test.each<[string, Bindings, string]>([
    ['missing values, all named', { inputs: {}, state: ok.state! }, "graph g: no value given for input 'x', param 'w'"],
    ['a static dim of the wrong size', { ...ok, params: { w: f32([3, 4]) } }, "param 'w': dim 1 should be 2, given 4"],
    ['a symbolic dim that disagrees', { ...ok, state: { k: f32([6, 3]) } }, "state 'k': dim 0 should be pos + seq = 5, given 6"],
    ['a symbol given that disagrees', { ...ok, symbols: { pos: 3, seq: 4 } }, "input 'x': dim 0 should be seq = 4, given 2"],
    ['a symbol nothing binds', { ...ok, symbols: {} }, "state 'k': no value for dim symbol 'pos' (bind it in symbols or through an input's shape)"],
    ['the wrong rank', { ...ok, inputs: { x: f32([4]) } }, "input 'x': expected rank 2 [seq, 2], given [4]"],
    ['the wrong dtype', { ...ok, inputs: { x: hostTensor('i32', [2, 2]) } }, "input 'x': expected dtype f32, given i32"],
  ])('reports %s (K1017)', (_, b, message) => {
    expect(kilnError(() => interpret(sample(), b))).toEqual({ code: 'K1017', message });
  });

  test('a symbol used only by an attribute must be given', () => {
    const g = new GraphBuilder('g');
    g.output('t', g.add('iota', [], { dtype: 'f32', shape: [2], axis: 0, start: pos }));
    expect(kilnError(() => interpret(g.build(), {}))).toEqual({
      code: 'K1017',
      message: "%0 iota: no value for dim symbol 'pos' (bind it in symbols or through an input's shape)",
    });
  });

  test('reshape then its inverse is the identity (property)', () => {
    const g = new GraphBuilder('g');
    const x = g.add('input', [], { name: 'x', dtype: 'f32', shape: [seq, 6] });
    const r = g.add('reshape', [x], { shape: [seq, 2, 3] });
    g.output('y', g.add('reshape', [g.add('transpose', [g.add('transpose', [r], { perm: [2, 0, 1] })], { perm: [1, 2, 0] })], { shape: [seq, 6] }));
    const graph = g.build();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain((n) => fc.array(fc.double({ noNaN: true }), { minLength: 6 * n, maxLength: 6 * n })), (data) => {
        const x = f32([data.length / 6, 6], data);
        expect(maxRelError(interpret(graph, { inputs: { x } }).y!, x)).toBe(0);
      }),
    );
  });
});

describe('host tensors', () => {
  test('hostTensor checks the data length and i32 integrality', () => {
    expect(() => hostTensor('f32', [2, 2], [1, 2, 3])).toThrow('hostTensor: 3 values for shape [2, 2] (4 elements)');
    expect(() => hostTensor('i32', [1], [1.5])).toThrow('hostTensor: i32 values must be integers');
    expect([...hostTensor('f32', [2]).data]).toEqual([0, 0]);
  });

  test('hostFromNested reads the shape off the nesting and rejects ragged arrays', () => {
    const t = hostFromNested('f32', [[[1, 2]], [[3, 4]]]);
    expect({ shape: t.shape, data: [...t.data] }).toEqual({ shape: [2, 1, 2], data: [1, 2, 3, 4] });
    expect(hostFromNested('i32', 5).shape).toEqual([]);
    expect(() => hostFromNested('f32', [[1, 2], [3]])).toThrow('ragged');
  });

  test('maxRelError is relative above the floor and absolute below it', () => {
    const ref = f32([4], [100, -2, 0, 1e-9]);
    expect(maxRelError(ref, ref)).toBe(0);
    expect(maxRelError(f32([4], [101, -2, 0, 1e-9]), ref)).toBeCloseTo(0.01, 15);
    expect(maxRelError(f32([4], [100, -2.5, 0, 1e-9]), ref)).toBeCloseTo(0.25, 15);
    expect(maxRelError(f32([4], [100, -2, 1e-7, 1e-9]), ref)).toBeCloseTo(0.1, 12); // 1e-7 / floor 1e-6
    expect(maxRelError(f32([4], [100, -2, 0, 2e-9]), ref, 1e-9)).toBeCloseTo(1, 12);
  });

  test('maxRelError on non-finite values and shapes', () => {
    const ref = f32([3], [Infinity, NaN, -Infinity]);
    expect(maxRelError(f32([3], [Infinity, NaN, -Infinity]), ref)).toBe(0);
    expect(maxRelError(f32([3], [Infinity, 0, -Infinity]), ref)).toBe(Infinity);
    expect(maxRelError(f32([3], [Infinity, NaN, 1]), ref)).toBe(Infinity);
    expect(() => maxRelError(f32([3]), f32([1, 3]))).toThrow('maxRelError: shapes differ: [3] vs [1, 3]');
  });
});
