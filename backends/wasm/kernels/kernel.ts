/**
 * What a wasm kernel is: from one node to the statements of the module's `run` function that
 * compute it. Addresses and dims are i32 expressions (fresh on every call: binaryen nodes are
 * never shared); shared loops live in module-level functions declared once through `helper`.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import type { TensorType } from '../../../graph/types.js';
import type { CausalRows } from '../causal-rows.js';
import type { Binaryen, Expr, Fn, Mod } from '../fn.js';

/** Run-time failures the module reports through its `fail` import (the host builds the KilnError). */
export const FAIL = { sliceBounds: 1, gatherIndex: 2, targetIndex: 3 } as const;

export interface WasmCtx {
  readonly b: Binaryen;
  readonly m: Mod;
  /** The `run` function being written (its locals). */
  readonly f: Fn;
  readonly node: Node;
  readonly types: readonly TensorType[];
  /** Byte address of the result / of operand i. */
  out(): Expr;
  in(i: number): Expr;
  /** Operand i is a param read from its 16-column packed copy (matmul transB b; swiglu W1, W3). */
  packed(i: number): boolean;
  /**
   * Whether operand i is a transpose [1, 0, 2] that was not copied (layout.ts): `in(i)` is then
   * the bytes of its operand [T, H, E], and element [h, t, e] is at (t·H + h)·E + e.
   */
  swapped(i: number): boolean;
  /** Set where a causal softmax reads this node's rows only in part (causal-rows.ts). */
  readonly causalRows: CausalRows | undefined;
  /** Set where operand 0 is a causal softmax's output: zeros after each row's kept columns. */
  readonly causalZeros: CausalRows | undefined;
  /** Byte address of the scratch area the host reserves for kernels that need one (rope_qk, scatter_add). */
  scratch(): Expr;
  /** Byte address of the cos/sin table of (base, D): f64 (cos, sin) pairs [p][i] (rope-table.ts). */
  ropeTable(base: number, D: number): Expr;
  /** update_slice: the result is the base's bytes; slice: the result is the operand's first rows (layout.ts views). */
  readonly inPlace: boolean;
  dim(d: Dim): Expr;
  numel(shape: readonly Dim[]): Expr;
  /** Declare a module function once; `build` adds it. Returns the name. */
  helper(name: string, build: () => void): string;
  /** A call to the `fail` import naming this node, with up to three i32 details. */
  fail(kind: number, ...details: Expr[]): Expr;
  /** Static bytes holding these values (fused bodies' array constants); returns the address. */
  constData(values: readonly number[], dtype: string): number;
  /**
   * A call of a column-split kernel `fn(...args, p0, p1)` over `parts` column blocks: split
   * across the worker threads when there are any, else one call over [0, parts).
   */
  parallel(fn: string, args: Expr[], parts: number): Expr;
  /** a·b + c on f32x4: relaxed fused multiply-add when the engine has it, else mul then add. */
  madd(a: Expr, b: Expr, c: Expr): Expr;
}

export type WasmKernel = (c: WasmCtx) => Expr[];

/** Normalise a possibly negative axis attribute. */
export function axisOf(n: Node, rank: number, name = 'axis'): number {
  const a = n.attrs[name] as number;
  return a < 0 ? a + rank : a;
}

/** (outer, size, inner) of a shape split at an axis, as element-count expressions. */
export function splitAt(c: WasmCtx, shape: readonly Dim[], axis: number): [Expr, Expr, Expr] {
  return [c.numel(shape.slice(0, axis)), c.dim(shape[axis]!), c.numel(shape.slice(axis + 1))];
}
