/**
 * Unary and binary elementwise ops (with NumPy broadcasting), and the expression forms that the
 * fused elementwise kernel reuses. Every formula is the interpreter's, written the same way, so
 * that an f32 result differs from the reference only by the final rounding to f32. Values are
 * computed in doubles and rounded when stored; i32 results wrap to 32 bits (`| 0`, Math.imul),
 * as the interpreter truncates them.
 */
import { type Dim, productEq } from '../../../graph/dim.js';
import type { DType } from '../../../graph/dtype.js';
import type { BinaryOp, UnaryOp } from '../../../graph/ops.js';
import { loopNest, paren, stridesOf } from '../codegen.js';
import type { Kernel, KernelCtx } from './kernel.js';

export function unaryExpr(op: UnaryOp, x: string): string {
  switch (op) {
    case 'neg':
      return `-${paren(x)}`;
    case 'abs':
    case 'exp':
    case 'log':
    case 'sqrt':
    case 'sin':
    case 'cos':
    case 'tanh':
      return `Math.${op}(${x})`;
    case 'rsqrt':
      return `1 / Math.sqrt(${x})`;
    case 'sigmoid':
      return `1 / (1 + Math.exp(-${paren(x)}))`;
    case 'relu':
      return `Math.max(${x}, 0)`;
    case 'silu':
      return `${paren(x)} / (1 + Math.exp(-${paren(x)}))`;
    case 'gelu':
      return `0.5 * ${paren(x)} * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (${x} + 0.044715 * ${paren(x)} ** 3)))`;
  }
}

export function binaryExpr(op: BinaryOp, a: string, b: string, dtype: DType): string {
  const [pa, pb] = [paren(a), paren(b)];
  const f32 = (): string => {
    switch (op) {
      case 'add':
        return `${pa} + ${pb}`;
      case 'sub':
        return `${pa} - ${pb}`;
      case 'mul':
        return `${pa} * ${pb}`;
      case 'div':
        return `${pa} / ${pb}`;
      case 'max':
        return `Math.max(${a}, ${b})`;
      case 'min':
        return `Math.min(${a}, ${b})`;
      case 'pow':
        return `Math.pow(${a}, ${b})`;
    }
  };
  if (dtype !== 'i32') return f32();
  return op === 'mul' ? `Math.imul(${a}, ${b})` : `(${f32()}) | 0`;
}

/** Strides of an operand of `shape` read at indices of `outShape` (trailing-aligned; '0' where it repeats). */
export function broadcastStrides(c: KernelCtx, shape: readonly Dim[], outShape: readonly Dim[]): string[] {
  const own = stridesOf(c.dims(shape));
  const lead = outShape.length - shape.length;
  return outShape.map((_, i) => (i < lead || shape[i - lead] === 1 ? '0' : own[i - lead]!));
}

/**
 * One loop over the output writing `expr(loads)`, where each operand is read at its broadcast
 * position. When every operand is the output's size or a single value, one flat loop does.
 */
export function broadcastLoop(c: KernelCtx, operands: readonly { v: string; shape: readonly Dim[] }[], outShape: readonly Dim[], emit: (loads: string[], at: string) => string): string {
  const n = c.numel(outShape);
  const flat = operands.every((x) => productEq(x.shape, outShape) || x.shape.every((d) => d === 1));
  if (flat) {
    const loads = operands.map((x) => (productEq(x.shape, outShape) ? `${x.v}[i]` : `${x.v}[0]`));
    return `for (let i = 0; i < ${n}; i++) {\n${emit(loads, 'i')}\n}`;
  }
  const strides = operands.map((x) => broadcastStrides(c, x.shape, outShape));
  return loopNest(c.dims(outShape), strides, (offs) => emit(operands.map((x, j) => `${x.v}[${offs[j]}]`), 'o'));
}

export const unaryKernel: Kernel = (c) => {
  const [x] = c.ins as [string];
  const op = c.node.op as UnaryOp;
  return broadcastLoop(c, [{ v: x, shape: c.types[0]!.shape }], c.node.type.shape, ([l], at) => `  ${c.out}[${at}] = ${unaryExpr(op, l!)};`);
};

export const binaryKernel: Kernel = (c) => {
  const [a, b] = c.ins as [string, string];
  const op = c.node.op as BinaryOp;
  const ops = [
    { v: a, shape: c.types[0]!.shape },
    { v: b, shape: c.types[1]!.shape },
  ];
  return broadcastLoop(c, ops, c.node.type.shape, ([x, y], at) => `  ${c.out}[${at}] = ${binaryExpr(op, x!, y!, c.node.type.dtype)};`);
};
