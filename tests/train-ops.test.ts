/**
 * The training ops (one_hot, scatter_add, cross_entropy, dropout_mask) against cases worked out by
 * hand, their shape rules' messages, and the dropout hash pinned to values computed independently
 * (Python integers, masked to 32 bits) so that every backend can be held to the same bits.
 */
import { describe, expect, test } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { type Dim, sym } from '../graph/dim.js';
import type { DType } from '../graph/dtype.js';
import { type Attrs, OPS, type OpKind, TRAINING_OPS, isElementwise } from '../graph/ops.js';
import { parseGraph, printText, stringifyGraph } from '../graph/print/index.js';
import { dropoutBits, dropoutHash, dropoutKeep, dropoutThreshold, dropoutUniform, dropoutValue, fmix32 } from '../graph/random.js';
import { type HostTensor, hostTensor } from '../graph/tensor.js';
import { validate } from '../graph/validate.js';
import { expectKiln, expectT, runOp } from './op-helpers.js';

const f32 = (shape: number[], data: number[]) => hostTensor('f32', shape, data);
const i32 = (shape: number[], data: number[]) => hostTensor('i32', shape, data);
const expectT12 = (t: HostTensor, shape: number[], data: number[], dtype: DType = 'f32') => expectT(t, shape, data, dtype, 12);
const run = runOp;
const ln2 = Math.LN2;

/** The shape rule's verdict on operands of these types. */
function build(op: OpKind, types: { dtype: DType; shape: Dim[] }[], attrs: Attrs): void {
  const g = new GraphBuilder('t');
  const ids = types.map((t, i) => g.add('input', [], { name: `x${i}`, dtype: t.dtype, shape: t.shape }));
  g.add(op, ids, attrs);
}

describe('the op table', () => {
  test('has the four training ops, none elementwise, each with a meaning', () => {
    expect([...TRAINING_OPS]).toEqual(['one_hot', 'scatter_add', 'cross_entropy', 'dropout_mask']);
    for (const op of TRAINING_OPS) {
      expect(OPS[op].kind).toBe(op);
      expect(isElementwise(op)).toBe(false);
      expect(OPS[op].meaning.length).toBeGreaterThan(40);
    }
    expect(OPS.one_hot.attrs).toEqual({ depth: 'dim' });
    expect(OPS.scatter_add.attrs).toEqual({ rows: 'dim' });
    expect(OPS.cross_entropy.attrs).toEqual({});
    expect(OPS.dropout_mask.attrs).toEqual({ shape: 'dims', p: 'float', stream: 'int' });
    expect([OPS.one_hot.arity, OPS.scatter_add.arity, OPS.cross_entropy.arity, OPS.dropout_mask.arity]).toEqual([1, 2, 2, 1]);
  });

  test('graphs with them validate, print and go through JSON unchanged', () => {
    const b = new GraphBuilder('train-ops');
    const ids = b.add('input', [], { name: 'ids', dtype: 'i32', shape: [sym('seq')] });
    const key = b.add('input', [], { name: 'key', dtype: 'i32', shape: [2] });
    const logits = b.add('input', [], { name: 'logits', dtype: 'f32', shape: [sym('seq'), 5] });
    b.output('hot', b.add('one_hot', [ids], { depth: 5 }));
    b.output('scat', b.add('scatter_add', [ids, logits], { rows: 7 }));
    b.output('ce', b.add('cross_entropy', [logits, ids], {}));
    b.output('mask', b.add('dropout_mask', [key], { shape: [sym('seq'), 5], p: 0.1, stream: 2 }));
    const g = b.build();
    validate(g);
    const text = printText(g);
    for (const op of TRAINING_OPS) expect(text).toContain(op);
    const back = parseGraph(stringifyGraph(g), 'mem.json');
    expect(stringifyGraph(back)).toBe(stringifyGraph(g));
  });
});

describe('one_hot', () => {
  test('one 1 per row, at the index', () => {
    expectT12(run('one_hot', [i32([3], [2, 0, 1])], { depth: 3 }), [3, 3], [0, 0, 1, 1, 0, 0, 0, 1, 0]);
  });
  test('indices of any rank: the depth axis comes last', () => {
    expectT12(run('one_hot', [i32([2, 2], [0, 1, 1, 0])], { depth: 2 }), [2, 2, 2], [1, 0, 0, 1, 0, 1, 1, 0]);
  });
  test('an index outside [0, depth) gives a row of zeros, not an error', () => {
    expectT12(run('one_hot', [i32([4], [-1, 3, 1, 99])], { depth: 3 }), [4, 3], [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  });
  test('a symbolic depth', () => {
    expectT12(run('one_hot', [i32([2], [1, 0])], { depth: sym('n') }, { symbols: { n: 2 } }), [2, 2], [0, 1, 1, 0]);
  });
  test('shape rule', () => {
    expectKiln(() => build('one_hot', [{ dtype: 'f32', shape: [3] }], { depth: 4 }), 'K1006', 'one_hot: indices must be i32, got f32[3]');
    expectKiln(() => build('one_hot', [{ dtype: 'i32', shape: [3] }], { depth: 0 }), 'K1007', 'one_hot: depth must be at least 1, got 0');
  });
});

describe('scatter_add', () => {
  test('rows land where the indices say; rows no index names are 0', () => {
    expectT12(run('scatter_add', [i32([2], [0, 2]), f32([2, 2], [1, 2, 3, 4])], { rows: 3 }), [3, 2], [1, 2, 0, 0, 3, 4]);
  });
  test('repeated indices accumulate', () => {
    expectT12(run('scatter_add', [i32([4], [1, 1, 0, 1]), f32([4], [1, 2, 4, 8])], { rows: 3 }), [3], [4, 11, 0]);
  });
  test('indices of rank 2, updates with a rest', () => {
    expectT12(run('scatter_add', [i32([2, 2], [0, 1, 1, 1]), f32([2, 2, 1], [1, 10, 100, 1000])], { rows: 2 }), [2, 1], [1, 1110]);
  });
  test('is the transpose of gather: ⟨gather(T, ids), U⟩ = ⟨T, scatter_add(ids, U)⟩', () => {
    const T = f32([3, 2], [1, -2, 3, 0.5, -1, 4]);
    const ids = i32([4], [2, 0, 2, 1]);
    const U = f32([4, 2], [0.5, 1, -1, 2, 3, -0.25, 1, 1]);
    const gathered = run('gather', [T, ids]);
    const scattered = run('scatter_add', [ids, U], { rows: 3 });
    const dot = (a: HostTensor, b: HostTensor) => a.data.reduce((s, v, i) => s + v * b.data[i]!, 0);
    expect(dot(gathered, U)).toBeCloseTo(dot(T, scattered), 12);
  });
  test('an index outside [0, rows) is an error', () => {
    expectKiln(() => run('scatter_add', [i32([2], [0, 3]), f32([2], [1, 2])], { rows: 3 }), 'K1017', '%2 scatter_add: index 3 at position 1 is outside [0, 3)');
    expectKiln(() => run('scatter_add', [i32([1], [-1]), f32([1], [1])], { rows: 3 }), 'K1017', '%2 scatter_add: index -1 at position 0 is outside [0, 3)');
  });
  test('shape rule', () => {
    expectKiln(
      () => build('scatter_add', [{ dtype: 'i32', shape: [2] }, { dtype: 'f32', shape: [3, 4] }], { rows: 5 }),
      'K1008',
      'scatter_add: updates f32[3, 4] must have the shape of indices [2] followed by the rest',
    );
    expectKiln(
      () => build('scatter_add', [{ dtype: 'i32', shape: [2, 3] }, { dtype: 'f32', shape: [2] }], { rows: 5 }),
      'K1008',
      'scatter_add: updates f32[2] must have the shape of indices [2, 3] followed by the rest',
    );
    expectKiln(() => build('scatter_add', [{ dtype: 'f32', shape: [2] }, { dtype: 'f32', shape: [2] }], { rows: 5 }), 'K1006', 'scatter_add: indices must be i32, got f32[2]');
    expectKiln(() => build('scatter_add', [{ dtype: 'i32', shape: [2] }, { dtype: 'i32', shape: [2] }], { rows: 5 }), 'K1006', 'scatter_add (updates): expects f32, got i32[2]');
    expectKiln(() => build('scatter_add', [{ dtype: 'i32', shape: [2] }, { dtype: 'f32', shape: [2] }], { rows: 0 }), 'K1007', 'scatter_add: rows must be at least 1, got 0');
  });
  test('shapes: [rows, …rest], with symbols', () => {
    const b = new GraphBuilder('t');
    const ids = b.add('input', [], { name: 'i', dtype: 'i32', shape: [sym('seq')] });
    const u = b.add('input', [], { name: 'u', dtype: 'f32', shape: [sym('seq'), 4, 2] });
    expect(b.typeOf(b.add('scatter_add', [ids, u], { rows: 11 }))).toEqual({ dtype: 'f32', shape: [11, 4, 2] });
  });
});

describe('cross_entropy', () => {
  test('logsumexp minus the target logit', () => {
    // equal logits: ln 4 whatever the target
    expectT12(run('cross_entropy', [f32([1, 4], [0, 0, 0, 0]), i32([1], [1])]), [1], [Math.log(4)]);
    // [0, ln 3]: lse = ln 4; target 0 → ln 4, target 1 → ln 4 − ln 3
    expectT12(run('cross_entropy', [f32([2, 2], [0, Math.log(3), 0, Math.log(3)]), i32([2], [0, 1])]), [2], [Math.log(4), Math.log(4 / 3)]);
    // [1, 2, 3], target 2: ln(1 + e⁻¹ + e⁻²)
    expectT12(run('cross_entropy', [f32([3], [1, 2, 3]), i32([], [2])]), [], [Math.log(1 + Math.exp(-1) + Math.exp(-2))]);
  });
  test('rank 3: one loss per leading position', () => {
    const got = run('cross_entropy', [f32([2, 1, 2], [0, 0, 5, 5]), i32([2, 1], [1, 0])]);
    expectT12(got, [2, 1], [ln2, ln2]);
  });
  test('huge logits stay finite (the row max is taken out first)', () => {
    const got = run('cross_entropy', [f32([3, 3], [1000, 0, -1000, 1e30, -1e30, 0, 1e4, 1e4, -Infinity]), i32([3], [1, 1, 0])]);
    expect(Array.from(got.data).every(Number.isFinite)).toBe(true);
    expect(got.data[0]).toBeCloseTo(1000, 9);
    expect(got.data[1]).toBe(2e30);
    expect(got.data[2]).toBeCloseTo(ln2, 9);
    // a confident, right prediction costs ~0, not NaN
    expect(run('cross_entropy', [f32([2], [800, -800]), i32([], [0])]).data[0]).toBe(0);
  });
  test('a target outside [0, V) is an error', () => {
    expectKiln(() => run('cross_entropy', [f32([2, 3], [0, 0, 0, 0, 0, 0]), i32([2], [0, 3])]), 'K1017', '%2 cross_entropy: target 3 at position 1 is outside [0, 3)');
    expectKiln(() => run('cross_entropy', [f32([1, 3], [0, 0, 0]), i32([1], [-1])]), 'K1017', '%2 cross_entropy: target -1 at position 0 is outside [0, 3)');
  });
  test('shape rule', () => {
    expectKiln(
      () => build('cross_entropy', [{ dtype: 'f32', shape: [2, 5] }, { dtype: 'i32', shape: [3] }], {}),
      'K1008',
      'cross_entropy: targets i32[3] must have the shape of logits f32[2, 5] without its last axis, [2]',
    );
    expectKiln(
      () => build('cross_entropy', [{ dtype: 'f32', shape: [sym('seq'), 5] }, { dtype: 'i32', shape: [sym('seq'), 1] }], {}),
      'K1008',
      'cross_entropy: targets i32[seq, 1] must have the shape of logits f32[seq, 5] without its last axis, [seq]',
    );
    expectKiln(() => build('cross_entropy', [{ dtype: 'f32', shape: [2, 5] }, { dtype: 'f32', shape: [2] }], {}), 'K1006', 'cross_entropy: targets must be i32, got f32[2]');
    expectKiln(() => build('cross_entropy', [{ dtype: 'i32', shape: [2, 5] }, { dtype: 'i32', shape: [2] }], {}), 'K1006', 'cross_entropy (logits): expects f32, got i32[2, 5]');
    expectKiln(() => build('cross_entropy', [{ dtype: 'f32', shape: [] }, { dtype: 'i32', shape: [] }], {}), 'K1002', 'cross_entropy: logits need rank ≥ 1 ([…, classes]), got []');
  });
});

describe('the dropout hash (graph/random.ts)', () => {
  test('fmix32 is murmur3’s finaliser', () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(fmix32(0xdeadbeef)).toBe(0x0de5c6a9);
  });
  test('pinned values (computed independently with Python integers)', () => {
    const cases: [number, number, number, number, number][] = [
      [0, 0, 0, 0, 0x37dd7702],
      [1, 0, 0, 0, 0x52081de9],
      [0, 1, 0, 0, 0xc09c6008],
      [0, 0, 1, 0, 0x0e8611fd],
      [0, 0, 0, 1, 0x1e10cf35],
      [42, 7, 3, 5, 0x4ea78dc9],
      [-1, -1, 2147483647, 1000, 0xb94abb06],
      [123456789, 2, 1, 65535, 0xe9156490],
    ];
    for (const [seed, step, stream, i, h] of cases) expect(dropoutHash(seed, step, stream, i), `hash(${seed}, ${step}, ${stream}, ${i})`).toBe(h);
    expect(dropoutUniform(0, 0, 0, 0)).toBe((0x37dd7702 >>> 8) / 2 ** 24);
    expect(dropoutBits(42, 7, 3, 5)).toBe(0x4ea78dc9 >>> 8);
  });
  test('u ≥ p is decided on integers: exactly at the threshold an element is kept', () => {
    const u = dropoutUniform(0, 0, 0, 0);
    expect(dropoutKeep(0, 0, 0, 0, u)).toBe(true);
    expect(dropoutKeep(0, 0, 0, 0, u + 2 ** -40)).toBe(false);
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.5)).toBe(2 ** 23);
    expect(dropoutThreshold(0.1)).toBe(1677722);
    expect(dropoutValue(0, 0, 0, 0, 0.2)).toBe(1.25);
  });
});

describe('dropout_mask', () => {
  const mask = (seed: number, step: number, attrs: { shape: Dim[]; p: number; stream: number }, symbols?: Record<string, number>) =>
    run('dropout_mask', [i32([2], [seed, step])], attrs, symbols ? { symbols } : {});

  test('pinned: key [42, 7], stream 3, p 0.5', () => {
    expectT12(mask(42, 7, { shape: [8], p: 0.5, stream: 3 }), [8], [0, 2, 0, 2, 2, 0, 2, 0]);
  });
  test('every element is the hash of its row-major index', () => {
    const got = mask(9, 4, { shape: [3, 5], p: 0.3, stream: 1 });
    expect(got.shape).toEqual([3, 5]);
    expect(Array.from(got.data)).toEqual(Array.from({ length: 15 }, (_, i) => dropoutValue(9, 4, 1, i, 0.3)));
  });
  test('kept fraction near 1 − p, kept values 1/(1 − p), mean near 1', () => {
    for (const p of [0.1, 0.25, 0.5, 0.9]) {
      const got = mask(1234, 56, { shape: [100, 100], p, stream: 0 });
      const kept = got.data.filter((v) => v !== 0);
      expect(new Set(kept)).toEqual(new Set([1 / (1 - p)]));
      const frac = kept.length / got.data.length;
      // binomial sd ≤ 0.005 at n = 10⁴: 5 sd
      expect(Math.abs(frac - (1 - p)), `p = ${p}: kept ${frac}`).toBeLessThan(0.025);
    }
  });
  test('p = 0 keeps everything at scale 1', () => {
    expect(Array.from(mask(1, 2, { shape: [50], p: 0, stream: 0 }).data).every((v) => v === 1)).toBe(true);
  });
  test('the same key and stream give the same mask; another step, stream or seed another', () => {
    const at = (seed: number, step: number, stream: number) => Array.from(mask(seed, step, { shape: [64], p: 0.5, stream }).data);
    const base = at(5, 10, 2);
    expect(at(5, 10, 2)).toEqual(base);
    const differs = (m: number[]) => m.filter((v, i) => v !== base[i]).length;
    // two independent masks at p = ½ differ in ~32 of 64 places
    expect(differs(at(5, 11, 2))).toBeGreaterThan(10);
    expect(differs(at(5, 10, 3))).toBeGreaterThan(10);
    expect(differs(at(6, 10, 2))).toBeGreaterThan(10);
  });
  test('a symbolic shape', () => {
    const got = mask(3, 1, { shape: [sym('seq'), 2], p: 0.5, stream: 0 }, { seq: 3 });
    expect(got.shape).toEqual([3, 2]);
    expect(Array.from(got.data)).toEqual(Array.from({ length: 6 }, (_, i) => dropoutValue(3, 1, 0, i, 0.5)));
  });
  test('negative seeds are their two’s-complement bits', () => {
    const got = mask(-1, -1, { shape: [4], p: 0.5, stream: 0 });
    expect(Array.from(got.data)).toEqual(Array.from({ length: 4 }, (_, i) => dropoutValue(0xffffffff, 0xffffffff, 0, i, 0.5)));
  });
  test('shape rule', () => {
    const ok = { shape: [4], p: 0.5, stream: 0 };
    expectKiln(() => build('dropout_mask', [{ dtype: 'f32', shape: [2] }], ok), 'K1006', 'dropout_mask: key must be i32[2] ([seed, step]), got f32[2]');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [3] }], ok), 'K1008', 'dropout_mask: key must be i32[2] ([seed, step]), got i32[3]');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [1, 2] }], ok), 'K1008', 'dropout_mask: key must be i32[2] ([seed, step]), got i32[1, 2]');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [2] }], { ...ok, p: 1 }), 'K1007', 'dropout_mask: p must be in [0, 1), got 1');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [2] }], { ...ok, p: -0.1 }), 'K1007', 'dropout_mask: p must be in [0, 1), got -0.1');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [2] }], { ...ok, p: NaN }), 'K1007', 'dropout_mask: p must be in [0, 1), got NaN');
    expectKiln(() => build('dropout_mask', [{ dtype: 'i32', shape: [2] }], { ...ok, stream: -1 }), 'K1007', 'dropout_mask: stream must be an integer in [0, 2147483647], got -1');
  });
});
