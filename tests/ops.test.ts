/**
 * Every op of graph/ops.ts against small cases worked out by hand: the first rung of the test
 * ladder. `cases` is keyed by op kind, so a new op without cases fails to type-check and fails
 * the last test here.
 */
import { describe, expect, test } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { dimAdd, dimScale, sym } from '../graph/dim.js';
import { interpret } from '../graph/interpret.js';
import { type Attrs, OPS, type OpKind } from '../graph/ops.js';
import { type HostTensor, hostTensor } from '../graph/tensor.js';
import { expectKiln, expectT, runOp } from './op-helpers.js';

const f32 = (shape: number[], data: number[]) => hostTensor('f32', shape, data);
const i32 = (shape: number[], data: number[]) => hostTensor('i32', shape, data);
const run = runOp;
const seq = sym('seq');
const pos = sym('pos');
const ln2 = 0.6931471805599453;
const ln3 = 1.0986122886681098;

const unary = (op: OpKind, xs: number[], want: number[]) => () => expectT(run(op, [f32([xs.length], xs)]), [xs.length], want);

/** A one-node graph around a source op, for param and state. */
function source(op: 'param' | 'state', t: HostTensor): HostTensor {
  const g = new GraphBuilder('t');
  g.output('out', g.add(op, [], { name: 'w', dtype: t.dtype, shape: t.shape }));
  return interpret(g.build(), op === 'param' ? { params: { w: t } } : { state: { w: t } }).out!;
}

function nullary(op: 'const' | 'iota', attrs: Attrs, symbols?: Record<string, number>): HostTensor {
  const g = new GraphBuilder('t');
  g.output('out', g.add(op, [], attrs));
  return interpret(g.build(), { symbols }).out!;
}

const x23 = f32([2, 3], [1, 2, 3, 4, 5, 6]);

const cases: Record<OpKind, Record<string, () => void>> = {
  input: {
    'returns the bound tensor': () => expectT(run('neg', [f32([2], [1, 2])]), [2], [-1, -2]),
    'binds a symbolic shape': () => expectT(run('abs', [f32([3, 1], [1, -2, 3])], {}, { shapes: [[seq, 1]] }), [3, 1], [1, 2, 3]),
  },
  param: { 'returns the bound weight': () => expectT(source('param', f32([2], [0.5, -1])), [2], [0.5, -1]) },
  state: { 'returns the bound buffer': () => expectT(source('state', i32([1, 2], [3, 4])), [1, 2], [3, 4], 'i32') },
  const: {
    'one value fills the shape': () => expectT(nullary('const', { dtype: 'f32', shape: [2, 2], value: [7] }), [2, 2], [7, 7, 7, 7]),
    'values in row-major order': () => expectT(nullary('const', { dtype: 'f32', shape: [2], value: [1.5, -2] }), [2], [1.5, -2]),
  },
  iota: {
    'counts along the axis': () =>
      expectT(nullary('iota', { dtype: 'i32', shape: [2, 3], axis: 1, start: 0 }), [2, 3], [0, 1, 2, 0, 1, 2], 'i32'),
    'negative axis and start 2': () =>
      expectT(nullary('iota', { dtype: 'f32', shape: [2, 3], axis: -1, start: 2 }), [2, 3], [2, 3, 4, 2, 3, 4]),
    'symbolic start (pos = 5) along axis 0': () =>
      expectT(nullary('iota', { dtype: 'i32', shape: [2, 3], axis: 0, start: pos }, { pos: 5 }), [2, 3], [5, 5, 5, 6, 6, 6], 'i32'),
  },

  neg: { 'negates': unary('neg', [1, -2, 0], [-1, 2, 0]) },
  abs: { 'drops the sign': unary('abs', [-3, 2, 0], [3, 2, 0]) },
  exp: { 'e^0, e^1, e^ln2': unary('exp', [0, 1, ln2], [1, 2.718281828459045, 2]) },
  log: { 'ln 1, ln e, ln 0, ln −1': unary('log', [1, 2.718281828459045, 0, -1], [0, 1, -Infinity, NaN]) },
  sqrt: { 'squares back': unary('sqrt', [9, 0.25, 0], [3, 0.5, 0]) },
  rsqrt: { 'one over the root': unary('rsqrt', [4, 0.25], [0.5, 2]) },
  sin: { 'at 0, π/6, π/2': unary('sin', [0, 0.5235987755982988, 1.5707963267948966], [0, 0.5, 1]) },
  cos: { 'at 0, π/3, π': unary('cos', [0, 1.0471975511965976, 3.141592653589793], [1, 0.5, -1]) },
  tanh: { 'tanh ln2 = (2 − ½)/(2 + ½)': unary('tanh', [0, ln2, -ln2], [0, 0.6, -0.6]) },
  sigmoid: { 'σ(ln3) = 1/(1 + ⅓)': unary('sigmoid', [0, ln3, -ln3, -1000], [0.5, 0.75, 0.25, 0]) },
  relu: { 'clamps below at 0': unary('relu', [-1, 0, 2.5], [0, 0, 2.5]) },
  silu: { 'x·σ(x)': unary('silu', [0, ln3, -ln3], [0, 0.75 * ln3, -0.25 * ln3]) },
  gelu: {
    // gelu(x) − gelu(−x) = x for the tanh form; 0.8411919906… is the tanh-form value at 1.
    'tanh form at 0, 1, −1': unary('gelu', [0, 1, -1], [0, 0.8411919906082768, 0.8411919906082768 - 1]),
  },

  add: {
    '[2,1] + [3] broadcasts to [2,3]': () =>
      expectT(run('add', [f32([2, 1], [10, 20]), f32([3], [1, 2, 3])]), [2, 3], [11, 12, 13, 21, 22, 23]),
    'i32 plus a scalar wraps at 2³¹': () =>
      expectT(run('add', [i32([2], [3, 2147483647]), i32([], [1])]), [2], [4, -2147483648], 'i32'),
  },
  sub: {
    '[2] − [2,1]': () => expectT(run('sub', [f32([2], [5, 1]), f32([2, 1], [1, 2])]), [2, 2], [4, 0, 3, -1]),
  },
  mul: {
    '[2,2] · [2]': () => expectT(run('mul', [f32([2, 2], [1, 2, 3, 4]), f32([2], [10, 100])]), [2, 2], [10, 200, 30, 400]),
    'i32 product wraps': () => expectT(run('mul', [i32([2], [65536, -3]), i32([1], [65536])]), [2], [0, -196608], 'i32'),
  },
  div: {
    '[2] / [2,1]': () => expectT(run('div', [f32([2], [6, 3]), f32([2, 1], [2, 3])]), [2, 2], [3, 1.5, 2, 1]),
    'by zero': () => expectT(run('div', [f32([3], [1, -1, 0]), f32([], [0])]), [3], [Infinity, -Infinity, NaN]),
    'i32 truncates toward zero': () => expectT(run('div', [i32([2], [7, -7]), i32([1], [2])]), [2], [3, -3], 'i32'),
  },
  max: { 'elementwise, broadcast': () => expectT(run('max', [f32([3], [1, 5, -2]), f32([1], [2])]), [3], [2, 5, 2]) },
  min: { 'elementwise, broadcast': () => expectT(run('min', [f32([3], [1, 5, -2]), f32([1], [2])]), [3], [1, 2, -2]) },
  pow: { '2³, 4^½, 9^−½': () => expectT(run('pow', [f32([3], [2, 4, 9]), f32([3], [3, 0.5, -0.5])]), [3], [8, 2, 1 / 3]) },

  sum: {
    'axis 1 keeps size 1': () => expectT(run('sum', [x23], { axis: 1 }), [2, 1], [6, 15]),
    'axis −2': () => expectT(run('sum', [x23], { axis: -2 }), [1, 3], [5, 7, 9]),
    'middle axis of [2,2,2]': () =>
      expectT(run('sum', [f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])], { axis: 1 }), [2, 1, 2], [4, 6, 12, 14]),
  },
  mean: {
    'axis 1': () => expectT(run('mean', [x23], { axis: 1 }), [2, 1], [2, 5]),
    'axis 0': () => expectT(run('mean', [x23], { axis: 0 }), [1, 3], [2.5, 3.5, 4.5]),
  },
  amax: {
    'axis 1': () => expectT(run('amax', [f32([2, 3], [1, 7, 3, -4, -2, -9])], { axis: 1 }), [2, 1], [7, -2]),
    'axis −2': () => expectT(run('amax', [f32([2, 3], [1, 7, 3, -4, -2, -9])], { axis: -2 }), [1, 3], [1, 7, 3]),
  },

  matmul: {
    '[2,2] @ [2,2]': () =>
      expectT(run('matmul', [f32([2, 2], [1, 2, 3, 4]), f32([2, 2], [5, 6, 7, 8])], { transB: false }), [2, 2], [19, 22, 43, 50]),
    '[2,3] @ [3,1]': () => expectT(run('matmul', [x23, f32([3, 1], [1, 0, -1])], { transB: false }), [2, 1], [-2, -2]),
    'batch of a broadcasts over b': () =>
      expectT(run('matmul', [f32([2, 1, 2], [1, 2, 3, 4]), f32([2, 2], [1, 0, 0, 2])], { transB: false }), [2, 1, 2], [1, 4, 3, 8]),
    'batch of b broadcasts over a': () =>
      expectT(run('matmul', [f32([1, 2], [1, 1]), f32([2, 2, 1], [1, 2, 3, 4])], { transB: false }), [2, 1, 1], [3, 7]),
    'transB reads [N, K] weights': () =>
      expectT(run('matmul', [f32([1, 2, 2], [1, 2, 3, 4]), f32([3, 2], [1, 0, 0, 1, 1, 1])], { transB: true }), [1, 2, 3], [1, 2, 3, 3, 4, 7]),
    'transB with batches [2,1] and [3] → [2,3]': () =>
      expectT(
        run('matmul', [f32([2, 1, 1, 2], [1, 0, 0, 1]), f32([3, 1, 2], [1, 2, 3, 4, 5, 6])], { transB: true }),
        [2, 3, 1, 1],
        [1, 3, 5, 2, 4, 6],
      ),
  },
  reshape: {
    'same order, new shape': () => expectT(run('reshape', [x23], { shape: [3, 2] }), [3, 2], [1, 2, 3, 4, 5, 6]),
    '[seq, 2] → [2·seq]': () =>
      expectT(run('reshape', [f32([3, 2], [1, 2, 3, 4, 5, 6])], { shape: [dimScale(seq, 2)] }, { shapes: [[seq, 2]] }), [6], [1, 2, 3, 4, 5, 6]),
  },
  transpose: {
    '[2,3] perm [1,0]': () => expectT(run('transpose', [x23], { perm: [1, 0] }), [3, 2], [1, 4, 2, 5, 3, 6]),
    // out[k, i, j] = x[i, j, k] with x[i, j, k] = 4i + 2j + k + 1
    '[2,2,2] perm [2,0,1]': () =>
      expectT(run('transpose', [f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])], { perm: [2, 0, 1] }), [2, 2, 2], [1, 3, 5, 7, 2, 4, 6, 8]),
  },
  slice: {
    'axis −1 from 1 to 3': () =>
      expectT(run('slice', [f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8])], { axis: -1, start: 1, end: 3 }), [2, 2], [2, 3, 6, 7]),
    'axis 0 from 1 to seq': () =>
      expectT(run('slice', [f32([3, 2], [1, 2, 3, 4, 5, 6])], { axis: 0, start: 1, end: seq }, { shapes: [[seq, 2]] }), [2, 2], [3, 4, 5, 6]),
    'a symbolic end past the axis is an error': () =>
      expectKiln(() => run('slice', [f32([4, 2], new Array(8).fill(0))], { axis: 0, start: 0, end: pos }, { symbols: { pos: 5 } }), 'K1009', '%1 slice: [0, 5) is outside axis 0 of size 4'),
  },
  concat: {
    'axis 0': () => expectT(run('concat', [f32([1, 2], [1, 2]), f32([2, 2], [3, 4, 5, 6])], { axis: 0 }), [3, 2], [1, 2, 3, 4, 5, 6]),
    'axis −1, three operands': () =>
      expectT(
        run('concat', [f32([2, 1], [1, 2]), f32([2, 2], [3, 4, 5, 6]), f32([2, 1], [7, 8])], { axis: -1 }),
        [2, 4],
        [1, 3, 4, 7, 2, 5, 6, 8],
      ),
  },
  broadcast: {
    '[3] → [2,3]': () => expectT(run('broadcast', [f32([3], [1, 2, 3])], { shape: [2, 3] }), [2, 3], [1, 2, 3, 1, 2, 3]),
    '[2,1] → [2,3]': () => expectT(run('broadcast', [f32([2, 1], [1, 2])], { shape: [2, 3] }), [2, 3], [1, 1, 1, 2, 2, 2]),
    '[2] → [seq, 2] with seq = 2': () =>
      expectT(run('broadcast', [f32([2], [1, 2])], { shape: [seq, 2] }, { symbols: { seq: 2 } }), [2, 2], [1, 2, 1, 2]),
  },
  gather: {
    'rows of a [3,2] table': () =>
      expectT(run('gather', [f32([3, 2], [10, 11, 20, 21, 30, 31]), i32([4], [2, 0, 2, 1])]), [4, 2], [30, 31, 10, 11, 30, 31, 20, 21]),
    '[2,1] indices into a rank-1 table': () => expectT(run('gather', [f32([3], [5, 6, 7]), i32([2, 1], [1, 2])]), [2, 1], [6, 7]),
    'an index past the table is an error': () =>
      expectKiln(() => run('gather', [f32([3], [5, 6, 7]), i32([2], [1, 3])]), 'K1017', '%2 gather: index 3 at position 1 is outside [0, 3)'),
    'a negative index is an error': () =>
      expectKiln(() => run('gather', [f32([3], [5, 6, 7]), i32([1], [-1])]), 'K1017', '%2 gather: index -1 at position 0 is outside [0, 3)'),
  },
  softmax: {
    'e^0 : e^ln3 = 1 : 3': () => expectT(run('softmax', [f32([1, 2], [0, ln3])], { axis: -1 }), [1, 2], [0.25, 0.75]),
    'along axis 0': () => expectT(run('softmax', [f32([2, 1], [0, ln3])], { axis: 0 }), [2, 1], [0.25, 0.75]),
    '−∞ gets 0 and large values do not overflow': () =>
      expectT(run('softmax', [f32([2, 2], [0, -Infinity, 1000, 1000])], { axis: 1 }), [2, 2], [1, 0, 0.5, 0.5]),
    'rows sum to 1': () => {
      const out = run('softmax', [f32([3, 4], [0.3, -1.2, 2.5, 0, 7, 7.5, -3, 1, -0.1, -0.2, -0.3, -0.4])], { axis: 1 });
      for (let r = 0; r < 3; r++) expect(out.data.slice(4 * r, 4 * r + 4).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    },
  },
  rmsnorm: {
    // rows [2,−2,2,−2] and [1,1,1,1] both have mean(x²) = rms² with rms 2 and 1
    'divides by the rms, scales by w': () =>
      expectT(
        run('rmsnorm', [f32([2, 4], [2, -2, 2, -2, 1, 1, 1, 1]), f32([4], [1, 2, 3, 4])], { eps: 0 }),
        [2, 4],
        [1, -2, 3, -4, 1, 2, 3, 4],
      ),
    'eps inside the root: [3, −3] / √(9 + 7)': () =>
      expectT(run('rmsnorm', [f32([2], [3, -3]), f32([2], [1, 1])], { eps: 7 }), [2], [0.75, -0.75]),
  },
  rope: {
    // D = 4, base 10000: pair 0 turns by p, pair 1 by p·10000^(−½) = p/100.
    'interleaved, offset 0: token 0 stays, token 1 turns by 1 and 0.01': () =>
      expectT(run('rope', [f32([2, 1, 4], [1, 2, 3, 4, 1, 2, 3, 4])], { base: 10000, layout: 'interleaved', offset: 0 }), [2, 1, 4], [
        1, 2, 3, 4,
        Math.cos(1) - 2 * Math.sin(1), Math.sin(1) + 2 * Math.cos(1), 3 * Math.cos(0.01) - 4 * Math.sin(0.01), 3 * Math.sin(0.01) + 4 * Math.cos(0.01),
      ]),
    'interleaved, offset 3: pairs (x0,x1), (x2,x3) turn by 3 and 0.03': () =>
      expectT(run('rope', [f32([1, 1, 4], [1, 2, 3, 4])], { base: 10000, layout: 'interleaved', offset: 3 }), [1, 1, 4], [
        Math.cos(3) - 2 * Math.sin(3), Math.sin(3) + 2 * Math.cos(3), 3 * Math.cos(0.03) - 4 * Math.sin(0.03), 3 * Math.sin(0.03) + 4 * Math.cos(0.03),
      ]),
    'half, offset 0: token 1 pairs (x0,x2), (x1,x3)': () =>
      expectT(run('rope', [f32([2, 1, 4], [1, 2, 3, 4, 1, 2, 3, 4])], { base: 10000, layout: 'half', offset: 0 }), [2, 1, 4], [
        1, 2, 3, 4,
        Math.cos(1) - 3 * Math.sin(1), 2 * Math.cos(0.01) - 4 * Math.sin(0.01), Math.sin(1) + 3 * Math.cos(1), 2 * Math.sin(0.01) + 4 * Math.cos(0.01),
      ]),
    'half, offset 3': () =>
      expectT(run('rope', [f32([1, 1, 4], [1, 2, 3, 4])], { base: 10000, layout: 'half', offset: 3 }), [1, 1, 4], [
        Math.cos(3) - 3 * Math.sin(3), 2 * Math.cos(0.03) - 4 * Math.sin(0.03), Math.sin(3) + 3 * Math.cos(3), 2 * Math.sin(0.03) + 4 * Math.cos(0.03),
      ]),
    'offset pos + 1 with pos = 1, two heads share the angle': () =>
      expectT(
        run('rope', [f32([1, 2, 2], [1, 0, 0, 1])], { base: 10000, layout: 'interleaved', offset: dimAdd(pos, 1) }, { symbols: { pos: 1 } }),
        [1, 2, 2],
        [Math.cos(2), Math.sin(2), -Math.sin(2), Math.cos(2)],
      ),
  },
  causal_mask: {
    'offset 0 keeps j ≤ i': () =>
      expectT(run('causal_mask', [f32([2, 3], [1, 2, 3, 4, 5, 6])], { offset: 0 }), [2, 3], [1, -Infinity, -Infinity, 4, 5, -Infinity]),
    'offset 1 keeps j ≤ i + 1': () =>
      expectT(run('causal_mask', [f32([2, 3], [1, 2, 3, 4, 5, 6])], { offset: 1 }), [2, 3], [1, 2, -Infinity, 4, 5, 6]),
    'batched, symbolic offset pos = 0': () =>
      expectT(run('causal_mask', [f32([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8])], { offset: pos }, { symbols: { pos: 0 } }), [2, 2, 2], [
        1, -Infinity, 3, 4, 5, -Infinity, 7, 8,
      ]),
  },
  update_slice: {
    'writes rows at a symbolic start': () =>
      expectT(
        run('update_slice', [f32([4, 2], [0, 0, 0, 0, 0, 0, 0, 0]), f32([2, 2], [1, 2, 3, 4])], { axis: 0, start: pos }, { symbols: { pos: 1 } }),
        [4, 2],
        [0, 0, 1, 2, 3, 4, 0, 0],
      ),
    'along the last axis': () =>
      expectT(run('update_slice', [f32([2, 3], [1, 2, 3, 4, 5, 6]), f32([2, 1], [9, 8])], { axis: -1, start: 2 }), [2, 3], [1, 2, 9, 4, 5, 8]),
    'past the end is an error': () =>
      expectKiln(
        () => run('update_slice', [f32([2, 2], [0, 0, 0, 0]), f32([2, 2], [1, 2, 3, 4])], { axis: 0, start: pos }, { symbols: { pos: 1 } }),
        'K1009',
        '%2 update_slice: [1, 3) is outside axis 0 of size 2',
      ),
  },
  // the training ops: more cases (the hash pinned, every shape error) in train-ops.test.ts
  one_hot: {
    'a 1 where the index is, an all-zero row outside [0, depth)': () =>
      expectT(run('one_hot', [i32([3], [2, 0, 5])], { depth: 3 }), [3, 3], [0, 0, 1, 1, 0, 0, 0, 0, 0]),
  },
  scatter_add: {
    'repeated indices add up; rows no index names are 0': () =>
      expectT(run('scatter_add', [i32([3], [2, 0, 2]), f32([3, 2], [1, 2, 3, 4, 5, 6])], { rows: 4 }), [4, 2], [3, 4, 0, 0, 6, 8, 0, 0]),
  },
  cross_entropy: {
    'ln 2 for two equal logits, whichever the target': () => expectT(run('cross_entropy', [f32([2, 2], [3, 3, -1, -1]), i32([2], [0, 1])]), [2], [ln2, ln2]),
    'huge logits stay finite': () => expectT(run('cross_entropy', [f32([1, 2], [1000, 1000 + ln3]), i32([1], [0])]), [1], [Math.log(4)]),
  },
  dropout_mask: {
    'p = 0 keeps every element at scale 1': () =>
      expectT(run('dropout_mask', [i32([2], [7, 3])], { shape: [4], p: 0, stream: 0 }), [4], [1, 1, 1, 1]),
    'each element is 0 or 1/(1 − p)': () => {
      const out = run('dropout_mask', [i32([2], [7, 3])], { shape: [64], p: 0.5, stream: 1 });
      expect(Array.from(out.data).every((v) => v === 0 || v === 2)).toBe(true);
    },
  },
  fused: {
    'means its body: silu(a) * b': () => {
      const body = new GraphBuilder('swiglu');
      const a = body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [2] });
      const b = body.add('input', [], { name: 'arg1', dtype: 'f32', shape: [2] });
      body.output('out', body.add('mul', [body.add('silu', [a]), b]));
      const e1 = 1 / (1 + Math.exp(-1));
      expectT(run('fused', [f32([2], [0, 1]), f32([2], [5, 2])], { pattern: 'swiglu', body: body.build() }), [2], [0, 2 * e1]);
    },
    'operand types must match the body': () => {
      const body = new GraphBuilder('neg');
      body.output('out', body.add('neg', [body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [3] })]));
      expectKiln(() => run('fused', [f32([2], [0, 1])], { pattern: 'elementwise', body: body.build() }), 'K1006', 'fused: operand 0 is f32[2], body expects f32[3]');
    },
  },
};

for (const [op, tests] of Object.entries(cases))
  describe(op, () => {
    for (const [name, fn] of Object.entries(tests)) test(name, fn);
  });

test('every op in OPS has hand-worked cases, and nothing else does', () => {
  expect(Object.keys(cases).sort()).toEqual(Object.keys(OPS).sort());
});
