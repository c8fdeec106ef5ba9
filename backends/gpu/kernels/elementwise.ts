/** Unary and binary elementwise ops, with NumPy broadcasting of the operands against the result. */
import type { GpuKernel, GpuKernelCtx } from './kernel.js';

/** One element of a unary op as an expression in `x`. */
export function unaryExpr(op: string, x: string): string {
  switch (op) {
    case 'neg': return `-(${x})`;
    case 'abs': return `Math.abs(${x})`;
    case 'exp': return `Math.exp(${x})`;
    // log of a negative is NaN (an argument: no literal for it, and Mesa folds ∞ − ∞) and log 0 is −∞, whatever the GPU's log does there
    case 'log': return `((${x}) < 0.0 ? s_nan : (${x}) == 0.0 ? -s_inf : Math.log(${x}))`;
    case 'sqrt': return `Math.sqrt(${x})`;
    case 'rsqrt': return `1.0 / Math.sqrt(${x})`;
    case 'sin': return `Math.sin(${x})`;
    case 'cos': return `Math.cos(${x})`;
    // tanh through exp of a non-positive number, so that large |x| gives ±1 and never ∞/∞
    case 'tanh': return `((${x}) >= 0.0 ? 1.0 : -1.0) * (1.0 - Math.exp(-2.0 * Math.abs(${x}))) / (1.0 + Math.exp(-2.0 * Math.abs(${x})))`;
    case 'sigmoid': return `1.0 / (1.0 + Math.exp(-(${x})))`;
    case 'relu': return `Math.max(${x}, 0.0)`;
    case 'silu': return `(${x}) / (1.0 + Math.exp(-(${x})))`;
    case 'gelu': return `0.5 * (${x}) * (1.0 + ${unaryExpr('tanh', `0.7978845608028654 * ((${x}) + 0.044715 * (${x}) * (${x}) * (${x}))`)})`;
  }
  throw new Error(`gpu backend: no elementwise form for '${op}'`);
}

/** One element of a binary op; i32 division truncates toward zero as in C. */
export function binaryExpr(op: string, a: string, b: string, int: boolean): string {
  switch (op) {
    case 'add': return `(${a}) + (${b})`;
    case 'sub': return `(${a}) - (${b})`;
    case 'mul': return `(${a}) * (${b})`;
    case 'div': return int ? `${truncExpr(`(${a}) / (${b})`)}` : `(${a}) / (${b})`;
    case 'max': return `Math.max(${a}, ${b})`;
    case 'min': return `Math.min(${a}, ${b})`;
    // GPU pow is undefined for a negative base: take |a| and restore the sign for odd integer b
    // and a negative base with a non-integer exponent is NaN, as in Math.pow
    case 'pow': return `((${a}) < 0.0 ? (Math.floor(${b}) == (${b}) ? ((${b}) - 2.0 * Math.floor((${b}) / 2.0) == 1.0 ? -1.0 : 1.0) * Math.pow(Math.abs(${a}), ${b}) : s_nan) : Math.pow(${a}, ${b}))`;
  }
  throw new Error(`gpu backend: no elementwise form for '${op}'`);
}

export function truncExpr(x: string): string {
  return `((${x}) >= 0.0 ? Math.floor(${x}) : -Math.floor(-(${x})))`;
}

/** The flat index into operand `j` for result coordinates `vars` (broadcast: a stretched dim reads index 0). */
export function operandIndex(c: GpuKernelCtx, j: number, outDims: readonly string[], vars: readonly string[]): string {
  const shape = c.types[j]!.shape.map(c.dim);
  const lead = outDims.length - shape.length;
  if (shape.length === outDims.length && shape.every((d, k) => d === outDims[k])) return 'i';
  const cs = shape.map((d, k) => (d === '1.0' && outDims[k + lead] !== '1.0' ? '0.0' : vars[k + lead]!));
  return c.flat(cs, shape);
}

export function broadcastPrelude(c: GpuKernelCtx): { code: string; dims: string[]; vars: string[] } {
  const dims = c.node.type.shape.map(c.dim);
  const { code, vars } = c.coords('i', dims, 'o');
  return { code, dims, vars };
}

export const unaryKernel: GpuKernel = (c) => `return ${unaryExpr(c.node.op, `${c.ins[0]}[i]`)};`;

export const binaryKernel: GpuKernel = (c) => {
  const { code, dims, vars } = broadcastPrelude(c);
  const a = `${c.ins[0]}[${operandIndex(c, 0, dims, vars)}]`;
  const b = `${c.ins[1]}[${operandIndex(c, 1, dims, vars)}]`;
  return `${code}\nreturn ${binaryExpr(c.node.op, a, b, c.node.type.dtype === 'i32')};`;
};
