/**
 * The vector-Jacobian rules of the autodiff pass (passes/autodiff.ts): one entry per op, in one
 * table. A rule gets the upstream gradient g (the gradient of the loss with respect to the node's
 * value, of the node's type) and returns, for each operand that asks for one, the gradient with
 * respect to that operand, of the operand's own type (a broadcast operand's gradient is summed
 * back here, by the rule).
 *
 * Every rule is written in core ops only, so any backend runs a backward graph with no semantics
 * beyond what it already has. What that takes where the maths wants something the op set lacks:
 *
 * - a step function (relu', abs', which of max/min won, where amax is attained): there is no
 *   comparison op, so step(d) = min(max(d · 2⁶⁰ · 2⁶⁰, 0), 1) — 1 for d ≥ 2⁻¹²⁰, 0 for d ≤ 0, for
 *   every f32 value (the smallest f32 above 0 is 2⁻¹⁴⁹; two multiplications by 2⁶⁰ rather than one
 *   by 2¹²⁰, which f32 cannot hold). Overflow to ∞ clamps to 1, so no NaN appears for finite d.
 * - 1/n for a mean over a symbolic axis: n as a value is iota(f32[1], start n).
 * - zeros of a symbolic shape: broadcast(const 0).
 * - RoPE's transpose, the rotation by −θ: with C negating the second element of every pair,
 *   R(−θ) = C·R(θ)·C, so the gradient is sign ⊙ rope(sign ⊙ g), sign a const [D] of ±1.
 * - the causal mask's gradient: g ⊙ keep with keep = exp(causal_mask(0)) (1 kept, 0 masked).
 *
 * Ties: max/min route the whole gradient to a (the first operand) on a tie; amax splits it evenly
 * among the positions attaining the maximum (as PyTorch's amax does). relu'(0) = 0, abs'(0) = 0.
 */
import { type Dim, dimAdd, dimEq, isStatic } from '../graph/dim.js';
import { InternalError } from '../graph/errors.js';
import type { Node } from '../graph/graph.js';
import type { Attrs, FusedBody, OpKind } from '../graph/ops.js';
import { type TensorType, normAxis } from '../graph/types.js';

/** What a rule sees of the node it differentiates, and how it adds nodes to the backward graph. */
export interface VjpContext {
  /** The forward node (in the graph being differentiated): its op, attributes and types. */
  readonly node: Node;
  /** The gradient with respect to the node's value (a value of the new graph, of the node's type). */
  readonly g: number;
  /** Operand i's forward value in the new graph. */
  x(i: number): number;
  /** The node's own forward value in the new graph. */
  y(): number;
  /** Whether operand i wants a gradient (it is f32 and lies between a param and the loss). */
  need(i: number): boolean;
  /** Add a node to the backward graph (scope `grad.<node scope>`); returns its id. */
  emit(op: OpKind, inputs: readonly number[], attrs?: Attrs): number;
  /** The type of a value of the new graph. */
  typeOf(id: number): TensorType;
  /** The operands' gradients of a fused node, by differentiating through its body. */
  throughBody(body: FusedBody, g: number): readonly (number | undefined)[];
}

/** One gradient per operand: undefined for those that did not ask (`need(i)` false). */
export type VjpRule = (c: VjpContext) => readonly (number | undefined)[];

// ---------------------------------------------------------------------------------------------
// small builders over a context

const TWO_60 = 2 ** 60;

function scalar(c: VjpContext, v: number): number {
  return c.emit('const', [], { dtype: 'f32', shape: [], value: [v] });
}
const add = (c: VjpContext, a: number, b: number) => c.emit('add', [a, b]);
const sub = (c: VjpContext, a: number, b: number) => c.emit('sub', [a, b]);
const mul = (c: VjpContext, a: number, b: number) => c.emit('mul', [a, b]);
const div = (c: VjpContext, a: number, b: number) => c.emit('div', [a, b]);
const neg = (c: VjpContext, a: number) => c.emit('neg', [a]);
const mulK = (c: VjpContext, a: number, k: number) => mul(c, a, scalar(c, k));

/** Zeros of `shape` (static or not): broadcast of a scalar 0. */
export function zeros(c: Pick<VjpContext, 'emit'>, shape: readonly Dim[]): number {
  const z = c.emit('const', [], { dtype: 'f32', shape: [], value: [0] });
  return shape.length === 0 ? z : c.emit('broadcast', [z], { shape: [...shape] });
}

/** 1 where d > 0 (d ≥ 2⁻¹²⁰), 0 where d ≤ 0: see the header. */
function step(c: VjpContext, d: number): number {
  const big = mulK(c, mulK(c, d, TWO_60), TWO_60);
  return c.emit('min', [c.emit('max', [big, scalar(c, 0)]), scalar(c, 1)]);
}

/**
 * `id` summed back to `shape` after NumPy broadcasting stretched it: sum over the leading axes it
 * lacked and over the axes where it had 1 and the value does not, then reshape away the leading 1s.
 */
export function sumTo(c: Pick<VjpContext, 'emit' | 'typeOf'>, id: number, shape: readonly Dim[]): number {
  const from = c.typeOf(id).shape;
  const lead = from.length - shape.length;
  if (lead < 0) throw new InternalError(`autodiff: cannot sum [${from.length} dims] back to a higher rank ${shape.length}`);
  let v = id;
  from.forEach((d, i) => {
    const target = i < lead ? undefined : shape[i - lead]!;
    if (target === undefined || (target === 1 && !dimEq(d, 1))) v = c.emit('sum', [v], { axis: i });
  });
  const now = c.typeOf(v).shape;
  const same = now.length === shape.length && now.every((d, i) => dimEq(d, shape[i]!));
  return same ? v : c.emit('reshape', [v], { shape: [...shape] });
}

/** 1/n as a value that broadcasts against anything: a scalar const, or 1/iota(start n) for a symbolic n. */
function reciprocal(c: VjpContext, n: Dim): number {
  if (isStatic(n)) return scalar(c, 1 / n);
  return div(c, scalar(c, 1), c.emit('iota', [], { dtype: 'f32', shape: [1], axis: 0, start: n }));
}

/** Transpose of the last two axes. */
function swapLast(c: VjpContext, id: number): number {
  const r = c.typeOf(id).shape.length;
  const perm = Array.from({ length: r }, (_, i) => (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
  return c.emit('transpose', [id], { perm });
}

const shapeOf = (c: VjpContext, i: number) => c.typeOf(c.x(i)).shape;

/** A unary op: dx = g · f'(x, y). */
function unary(deriv: (c: VjpContext, x: number, y: () => number) => number): VjpRule {
  return (c) => [mul(c, c.g, deriv(c, c.x(0), () => c.y()))];
}

/** A binary op: the gradients at the broadcast shape, each summed back to its operand. */
function binary(ga: ((c: VjpContext) => number) | undefined, gb: ((c: VjpContext) => number) | undefined): VjpRule {
  return (c) => [
    c.need(0) && ga ? sumTo(c, ga(c), shapeOf(c, 0)) : undefined,
    c.need(1) && gb ? sumTo(c, gb(c), shapeOf(c, 1)) : undefined,
  ];
}

// ---------------------------------------------------------------------------------------------
// the table

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_K = 0.044715;

export const RULES: Readonly<Partial<Record<OpKind, VjpRule>>> = {
  // unary: dx = g · f'(x)
  neg: (c) => [neg(c, c.g)],
  abs: unary((c, x) => sub(c, step(c, x), step(c, neg(c, x)))),
  exp: unary((_, __, y) => y()),
  log: (c) => [div(c, c.g, c.x(0))],
  sqrt: (c) => [div(c, c.g, mulK(c, c.y(), 2))],
  rsqrt: unary((c, _, y) => mulK(c, mul(c, mul(c, y(), y()), y()), -0.5)),
  sin: unary((c, x) => c.emit('cos', [x])),
  cos: unary((c, x) => neg(c, c.emit('sin', [x]))),
  tanh: unary((c, _, y) => sub(c, scalar(c, 1), mul(c, y(), y()))),
  sigmoid: unary((c, _, y) => mul(c, y(), sub(c, scalar(c, 1), y()))),
  relu: unary((c, x) => step(c, x)),
  // silu' = σ + y·(1 − σ)
  silu: unary((c, x, y) => {
    const s = c.emit('sigmoid', [x]);
    return add(c, s, mul(c, y(), sub(c, scalar(c, 1), s)));
  }),
  // y = ½x(1 + t), t = tanh(u), u = c₀(x + k·x³): y' = ½(1 + t) + ½x·(1 − t²)·c₀(1 + 3k·x²)
  gelu: unary((c, x) => {
    const x2 = mul(c, x, x);
    const u = mulK(c, add(c, x, mulK(c, mul(c, x2, x), GELU_K)), SQRT_2_OVER_PI);
    const t = c.emit('tanh', [u]);
    const left = mulK(c, add(c, scalar(c, 1), t), 0.5);
    const du = mulK(c, add(c, scalar(c, 1), mulK(c, x2, 3 * GELU_K)), SQRT_2_OVER_PI);
    const right = mul(c, mulK(c, mul(c, x, sub(c, scalar(c, 1), mul(c, t, t))), 0.5), du);
    return add(c, left, right);
  }),

  // binary, broadcasting
  add: binary(
    (c) => c.g,
    (c) => c.g,
  ),
  sub: binary(
    (c) => c.g,
    (c) => neg(c, c.g),
  ),
  mul: binary(
    (c) => mul(c, c.g, c.x(1)),
    (c) => mul(c, c.g, c.x(0)),
  ),
  // d(a/b)/db = −a/b² = −y/b
  div: binary(
    (c) => div(c, c.g, c.x(1)),
    (c) => neg(c, div(c, mul(c, c.g, c.y()), c.x(1))),
  ),
  // a wins ties
  max: binary(
    (c) => mul(c, c.g, sub(c, scalar(c, 1), step(c, sub(c, c.x(1), c.x(0))))),
    (c) => mul(c, c.g, step(c, sub(c, c.x(1), c.x(0)))),
  ),
  min: binary(
    (c) => mul(c, c.g, sub(c, scalar(c, 1), step(c, sub(c, c.x(0), c.x(1))))),
    (c) => mul(c, c.g, step(c, sub(c, c.x(0), c.x(1)))),
  ),
  // d(a^b)/da = b·a^(b−1) (finite at a = 0 for b ≥ 1); d(a^b)/db = a^b · ln a
  pow: binary(
    (c) => mul(c, c.g, mul(c, c.x(1), c.emit('pow', [c.x(0), sub(c, c.x(1), scalar(c, 1))]))),
    (c) => mul(c, c.g, mul(c, c.y(), c.emit('log', [c.x(0)]))),
  ),

  // reductions keep the axis as 1, so g broadcasts straight back
  sum: (c) => [c.emit('broadcast', [c.g], { shape: [...shapeOf(c, 0)] })],
  mean: (c) => {
    const shape = shapeOf(c, 0);
    const n = shape[normAxis(c.node.attrs['axis'] as number, shape.length)!]!;
    return [c.emit('broadcast', [mul(c, c.g, reciprocal(c, n))], { shape: [...shape] })];
  },
  // the gradient goes to the positions attaining the maximum, split evenly among ties
  amax: (c) => {
    const axis = c.node.attrs['axis'] as number;
    const hit = sub(c, scalar(c, 1), step(c, sub(c, c.y(), c.x(0))));
    const count = c.emit('sum', [hit], { axis });
    return [mul(c, hit, div(c, c.g, count))];
  },

  // a[…, M, K] · b[…, K, N] (b[…, N, K] with transB): da = g · bᵀ, db = aᵀ · g (gᵀ · a with transB)
  matmul: (c) => {
    const tb = c.node.attrs['transB'] === true;
    const [a, b] = [c.x(0), c.x(1)];
    const da = c.need(0) ? sumTo(c, c.emit('matmul', [c.g, b], { transB: !tb }), shapeOf(c, 0)) : undefined;
    const db = c.need(1)
      ? sumTo(c, tb ? c.emit('matmul', [swapLast(c, c.g), a], { transB: false }) : c.emit('matmul', [swapLast(c, a), c.g], { transB: false }), shapeOf(c, 1))
      : undefined;
    return [da, db];
  },

  // layout
  reshape: (c) => [c.emit('reshape', [c.g], { shape: [...shapeOf(c, 0)] })],
  transpose: (c) => {
    const perm = c.node.attrs['perm'] as number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, j) => (inv[p] = j));
    return [c.emit('transpose', [c.g], { perm: inv })];
  },
  // the slice written back into zeros
  slice: (c) => [c.emit('update_slice', [zeros(c, shapeOf(c, 0)), c.g], { axis: c.node.attrs['axis'] as number, start: c.node.attrs['start'] as Dim })],
  update_slice: (c) => {
    const [axis, start] = [c.node.attrs['axis'] as number, c.node.attrs['start'] as Dim];
    const u = shapeOf(c, 1);
    const ax = normAxis(axis, u.length)!;
    return [
      c.need(0) ? c.emit('update_slice', [c.g, zeros(c, u)], { axis, start }) : undefined,
      c.need(1) ? c.emit('slice', [c.g], { axis, start, end: dimAdd(start, u[ax]!) }) : undefined,
    ];
  },
  // each operand's own stretch of g
  concat: (c) => {
    const axis = c.node.attrs['axis'] as number;
    const ax = normAxis(axis, shapeOf(c, 0).length)!;
    let at: Dim = 0;
    return c.node.inputs.map((_, i) => {
      const start = at;
      at = dimAdd(at, shapeOf(c, i)[ax]!);
      return c.need(i) ? c.emit('slice', [c.g], { axis, start, end: at }) : undefined;
    });
  },
  broadcast: (c) => [sumTo(c, c.g, shapeOf(c, 0))],
  // rows picked by gather add back into the table's rows (repeated ids accumulate)
  gather: (c) => [c.need(0) ? c.emit('scatter_add', [c.x(1), c.g], { rows: shapeOf(c, 0)[0]! }) : undefined, undefined],
  scatter_add: (c) => [undefined, c.need(1) ? c.emit('gather', [c.g, c.x(0)]) : undefined],

  // the numerically careful ones
  softmax: (c) => {
    const y = c.y();
    const s = c.emit('sum', [mul(c, c.g, y)], { axis: c.node.attrs['axis'] as number });
    return [mul(c, y, sub(c, c.g, s))];
  },
  // r = (mean(x²) + eps)^−½ per row, n = x·r: dw = Σ_rows g·n, dx = r·(gw − n·mean(gw·n)) with gw = g⊙w
  rmsnorm: (c) => {
    const [x, w] = [c.x(0), c.x(1)];
    const r = c.emit('rsqrt', [add(c, c.emit('mean', [mul(c, x, x)], { axis: -1 }), scalar(c, c.node.attrs['eps'] as number))]);
    const n = mul(c, x, r);
    let dx: number | undefined;
    if (c.need(0)) {
      const gw = mul(c, c.g, w);
      const m = c.emit('mean', [mul(c, gw, n)], { axis: -1 });
      dx = mul(c, r, sub(c, gw, mul(c, n, m)));
    }
    const dw = c.need(1) ? sumTo(c, mul(c, c.g, n), shapeOf(c, 1)) : undefined;
    return [dx, dw];
  },
  // rotation by −θ: sign ⊙ rope(sign ⊙ g), sign negating the second element of every pair
  rope: (c) => {
    const D = shapeOf(c, 0)[2] as number;
    const half = c.node.attrs['layout'] === 'half';
    const value = Array.from({ length: D }, (_, j) => ((half ? j >= D / 2 : j % 2 === 1) ? -1 : 1));
    const sign = c.emit('const', [], { dtype: 'f32', shape: [D], value });
    return [mul(c, c.emit('rope', [mul(c, c.g, sign)], c.node.attrs), sign)];
  },
  causal_mask: (c) => {
    const keep = c.emit('exp', [c.emit('causal_mask', [zeros(c, shapeOf(c, 0))], c.node.attrs)]);
    return [mul(c, c.g, keep)];
  },
  // (softmax(logits) − one_hot(targets)) · g[…, None]
  cross_entropy: (c) => {
    const shape = shapeOf(c, 0);
    const p = c.emit('softmax', [c.x(0)], { axis: -1 });
    const hot = c.emit('one_hot', [c.x(1)], { depth: shape.at(-1)! });
    const g = c.emit('reshape', [c.g], { shape: [...c.typeOf(c.g).shape, 1] });
    return [mul(c, sub(c, p, hot), g), undefined];
  },
  fused: (c) => c.throughBody(c.node.attrs['body'] as FusedBody, c.g),
};
