/**
 * What a gpu kernel is: a function from one node to the body of a gpu.js kernel that computes ONE
 * element of the node's result. Every result is a flat row-major vector (gpu.js lays a 1-D output
 * out as a near-square texture, which is how tensors past the maximum texture size fit); the body
 * sees `i`, the flat index of its element (a float), and returns that element's value.
 *
 * All index arithmetic is in float32, exact for integers below 2^24: the emitter refuses tensors
 * with more elements than that. Dims are literals where static, else expressions in the symbol
 * arguments (`s_pos`), so one compiled kernel serves every value of the symbols.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import type { TensorType } from '../../../graph/types.js';

export interface GpuKernelCtx {
  readonly node: Node;
  /** The operands' argument names in the kernel (`a0`, `a1`, …), in order. */
  readonly ins: readonly string[];
  readonly types: readonly TensorType[];
  /** A dim as a kernel expression (a float literal or an expression in the symbol arguments). */
  dim(d: Dim): string;
  /** Statements that split flat index `idx` into coordinates of `shape`; the variables are named `<p>0…`. */
  coords(idx: string, shape: readonly string[], p: string): { code: string; vars: string[] };
  /** The flat row-major index of coordinates `vars` in a tensor of dims `shape`. */
  flat(vars: readonly string[], shape: readonly string[]): string;
  /**
   * A table computed on the host and uploaded as an extra argument (rope's cos/sin): `fn` is a
   * helper of the generated module, `args` host expressions (see hostDim). The table is uploaded
   * only when the arguments' values change, once per run for every kernel that asks for the same
   * call, and must have the same length for every run at given capacities. Returns its name.
   */
  hostArg(fn: string, args: readonly string[]): string;
  /** A dim as a host expression: its value in this run (`run`), or at the kernels' capacities (`cap`). */
  hostDim(d: Dim, at: 'run' | 'cap'): string;
}

/** A kernel's body: statements ending in `return <value>;`. */
export type GpuKernel = (c: GpuKernelCtx) => string;

/** A number as a float literal for a kernel (gpu.js and WGSL both want the decimal point). */
export function lit(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`gpu backend: non-finite literal ${x}`);
  const s = String(x);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** The product of kernel expressions. */
export function prod(xs: readonly string[]): string {
  const num = xs.filter((x) => /^\d+\.0$/.test(x)).reduce((a, x) => a * Number(x), 1);
  const sym = xs.filter((x) => !/^\d+\.0$/.test(x));
  return [...(num !== 1 || sym.length === 0 ? [lit(num)] : []), ...sym.map((s) => `(${s})`)].join(' * ');
}
