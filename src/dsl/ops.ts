import type { Dim } from '../../graph/dim.js';
import type { DType } from '../../graph/dtype.js';
import type { BinaryOp, ReduceOp, UnaryOp } from '../../graph/ops.js';
import { type DimArg, type ModelBuilder, type Names, type NamesOf, type Tensor, toDim, toDims } from './tensor.js';

/**
 * The core ops as typed functions. Each adds one IR node; its shape rule (graph/ops.ts) checks
 * the dims at build time and reports the user's line. The types check what they can say: a
 * contraction over differently named dims does not compile (`NoInfer` stops TypeScript from
 * widening the shared name into a union).
 */

/** Same rank, names forgotten: what reductions and slices return. */
export type Wide<S extends Names> = { -readonly [K in keyof S]: string };
type Any<S extends Names> = { -readonly [K in keyof S]: unknown };
/** The names of a broadcast result: the longer operand's (the first on a tie). */
export type Broadcast<A extends Names, B extends Names> = B extends readonly [...Any<A>, unknown, ...unknown[]] ? B : A;
type Permute<S extends Names, P extends readonly number[]> = { -readonly [K in keyof P]: S[P[K] & number] & string };

// ---------------------------------------------------------------------------------------------
// sources

/** A scalar constant (shape []); it broadcasts against anything. */
export function scalar(m: ModelBuilder, value: number, dtype: DType = 'f32'): Tensor<[]> {
  return m.add<[]>('const', [], { dtype, shape: [], value: [value] });
}

export function constant<const D extends readonly DimArg[]>(m: ModelBuilder, values: readonly number[], shape: D, dtype: DType = 'f32'): Tensor<NamesOf<D>> {
  return m.add('const', [], { dtype, shape: toDims(shape), value: [...values] });
}

/** Counts along `axis` from `start`: positions, indices. */
export function iota<const D extends readonly DimArg[]>(m: ModelBuilder, shape: D, axis = 0, start: Dim = 0, dtype: DType = 'i32'): Tensor<NamesOf<D>> {
  return m.add('iota', [], { dtype, shape: toDims(shape), axis, start });
}

// ---------------------------------------------------------------------------------------------
// elementwise

/** A unary op works on tensors (adds a node) and on numbers (computes), so an activation arrow is also plain JS. */
interface UnaryFn {
  <S extends Names>(x: Tensor<S>): Tensor<S>;
  (x: number): number;
}

function unary(op: UnaryOp, f: (x: number) => number): UnaryFn {
  return ((x: Tensor | number) => (typeof x === 'number' ? f(x) : x.m.add(op, [x]))) as UnaryFn;
}

const gelu1 = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const sigmoid1 = (x: number) => 1 / (1 + Math.exp(-x));

export const neg = unary('neg', (x) => -x);
export const abs = unary('abs', Math.abs);
export const exp = unary('exp', Math.exp);
export const log = unary('log', Math.log);
export const sqrt = unary('sqrt', Math.sqrt);
export const rsqrt = unary('rsqrt', (x) => 1 / Math.sqrt(x));
export const sin = unary('sin', Math.sin);
export const cos = unary('cos', Math.cos);
export const tanh = unary('tanh', Math.tanh);
export const sigmoid = unary('sigmoid', sigmoid1);
export const relu = unary('relu', (x) => Math.max(x, 0));
export const silu = unary('silu', (x) => x * sigmoid1(x));
export const gelu = unary('gelu', gelu1);

function operand(m: ModelBuilder, x: Tensor | number, like: Tensor): Tensor {
  return typeof x === 'number' ? scalar(m, x, like.type.dtype) : x;
}

interface BinaryFn {
  <A extends Names, B extends Names>(a: Tensor<A>, b: Tensor<B>): Tensor<Broadcast<A, B>>;
  <A extends Names>(a: Tensor<A>, b: number): Tensor<A>;
  <B extends Names>(a: number, b: Tensor<B>): Tensor<B>;
  (a: number, b: number): number;
}

function binary(op: BinaryOp, f: (a: number, b: number) => number): BinaryFn {
  return ((a: Tensor | number, b: Tensor | number): Tensor | number => {
    if (typeof a === 'number' && typeof b === 'number') return f(a, b);
    const t = typeof a === 'number' ? (b as Tensor) : a;
    return t.m.add(op, [operand(t.m, a, t), operand(t.m, b, t)]);
  }) as BinaryFn;
}

export const add = binary('add', (a, b) => a + b);
export const sub = binary('sub', (a, b) => a - b);
export const mul = binary('mul', (a, b) => a * b);
export const div = binary('div', (a, b) => a / b);
export const max = binary('max', Math.max);
export const min = binary('min', Math.min);
export const pow = binary('pow', Math.pow);

// ---------------------------------------------------------------------------------------------
// reductions (the axis stays, with size 1)

function reduce(op: ReduceOp) {
  return <S extends Names>(x: Tensor<S>, axis = -1): Tensor<Wide<S>> => x.m.add(op, [x], { axis });
}

export const sum = reduce('sum');
export const mean = reduce('mean');
export const amax = reduce('amax');

// ---------------------------------------------------------------------------------------------
// contractions

/** a[…, M, K] · b[…, K, N] → […, M, N]. */
export function matmul<const BA extends Names, M extends string, K extends string, const BB extends Names, N extends string>(
  a: Tensor<readonly [...BA, M, K]>,
  b: Tensor<readonly [...BB, NoInfer<K>, N]>,
): Tensor<[...BA, M, N]> {
  return a.m.add('matmul', [a, b], { transB: false });
}

/** a[…, M, K] · b[…, N, K]ᵀ → […, M, N]: b is read transposed (scores = q·kᵀ). */
export function matmulT<const BA extends Names, M extends string, K extends string, const BB extends Names, N extends string>(
  a: Tensor<readonly [...BA, M, K]>,
  b: Tensor<readonly [...BB, N, NoInfer<K>]>,
): Tensor<[...BA, M, N]> {
  return a.m.add('matmul', [a, b], { transB: true });
}

/** x[…, in] · W[out, in]ᵀ → […, out]: weight matrices are stored [out, in], as in GGUF. */
export function linear<const S extends Names, I extends string, O extends string>(x: Tensor<readonly [...S, I]>, w: Tensor<readonly [O, NoInfer<I>]>): Tensor<[...S, O]> {
  return x.m.add('matmul', [x, w], { transB: true });
}

// ---------------------------------------------------------------------------------------------
// layout

export function reshape<const D extends readonly DimArg[]>(x: Tensor, shape: D): Tensor<NamesOf<D>> {
  return x.m.add('reshape', [x], { shape: toDims(shape) });
}

/** Axes permuted: out.shape[j] = x.shape[perm[j]]. */
export function transpose<S extends Names, const P extends readonly number[]>(x: Tensor<S>, perm: P): Tensor<Permute<S, P>> {
  return x.m.add('transpose', [x], { perm: [...perm] });
}

export function slice<S extends Names>(x: Tensor<S>, axis: number, start: DimArg, end: DimArg): Tensor<Wide<S>> {
  return x.m.add('slice', [x], { axis, start: toDim(start), end: toDim(end) });
}

export function concat<S extends Names>(xs: readonly [Tensor<S>, ...Tensor<S>[]], axis: number): Tensor<Wide<S>> {
  return xs[0].m.add('concat', xs, { axis });
}

export function broadcast<const D extends readonly DimArg[]>(x: Tensor, shape: D): Tensor<NamesOf<D>> {
  return x.m.add('broadcast', [x], { shape: toDims(shape) });
}

/** Rows of `table` picked by i32 `indices`: table[V, …rest], indices[…idx] → […idx, …rest]. */
export function gather<V extends string, const R extends Names, I extends Names>(table: Tensor<readonly [V, ...R]>, indices: Tensor<I>): Tensor<[...I, ...R]> {
  return table.m.add('gather', [table, indices]);
}

// ---------------------------------------------------------------------------------------------
// the numerically careful ones

export function softmax<S extends Names>(x: Tensor<S>, axis = -1): Tensor<S> {
  return x.m.add('softmax', [x], { axis });
}

/** x / √(mean(x²) + eps) · w over the last axis. */
export function rmsnorm<const S extends Names, D extends string>(x: Tensor<readonly [...S, D]>, w: Tensor<readonly [NoInfer<D>]>, eps: number): Tensor<[...S, D]> {
  return x.m.add('rmsnorm', [x, w], { eps });
}

export type RopeLayout = 'interleaved' | 'half';

/** Rotary position embedding of x[seq, heads, headDim]; token s sits at position offset + s. */
export function rope<S extends string, H extends string, D extends string>(
  x: Tensor<readonly [S, H, D]>,
  opts: { base: number; layout: RopeLayout; offset?: Dim },
): Tensor<[S, H, D]> {
  return x.m.add('rope', [x], { base: opts.base, layout: opts.layout, offset: opts.offset ?? 0 });
}

/** −∞ where key j is after query i (j > i + offset). */
export function causalMask<S extends Names>(x: Tensor<S>, offset: Dim = 0): Tensor<S> {
  return x.m.add('causal_mask', [x], { offset });
}

