/**
 * What a js kernel is: a function from one node (with the JS names of its operand and result
 * arrays) to the statements that compute it inside the generated `run()`. Kernels that share a
 * loop across nodes put it in a module-level helper (declared once through `helper`), so that
 * `run()` reads as one call per node, llama2.c style.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import type { TensorType } from '../../../graph/types.js';

export interface KernelCtx {
  readonly node: Node;
  /** The result array's variable (Float32Array or Int32Array of exactly the result's size). */
  readonly out: string;
  /** The operands' variables, in order. */
  readonly ins: readonly string[];
  readonly types: readonly TensorType[];
  /** update_slice only: the base is the caller's state buffer and `out` is that buffer. */
  readonly inPlace: boolean;
  /** A dim as a JS expression (`32`, `seq`, `(pos + seq)`). */
  dim(d: Dim): string;
  dims(shape: readonly Dim[]): string[];
  /** Element count of a shape as a JS expression. */
  numel(shape: readonly Dim[]): string;
  /** Declare a module-level helper once (by name); returns the name. */
  helper(name: string, source: string): string;
  /** A module-level constant array, declared once; returns its name. */
  constant(name: string, init: string): string;
  /** A statement that throws the module's KilnError with `code` and the message (a JS expression). */
  raise(code: string, message: string): string;
  /** `%12 matmul (layers.0.attn.q)`: how messages name this node. */
  readonly where: string;
}

/**
 * A kernel's statements; `check` (if any) runs before the result's array is made — run-time
 * bounds checks, so that a bad slice is a K1009 and not a typed array of negative length.
 */
export type Kernel = (c: KernelCtx) => string | { readonly check: string; readonly code: string };

/** `text` escaped to sit inside a JS template literal (backquotes, backslashes and `${`). */
export function esc(text: string): string {
  return text.replace(/[`\\]/g, (m) => `\\${m}`).replace(/\$\{/g, '\\${');
}

/** A JS expression shown inside a template literal: numbers as they are, others interpolated. */
export function shown(expr: string): string {
  return /^\(?-?\d+\)?$/.test(expr) ? expr.replace(/[()]/g, '') : `\${${expr}}`;
}
