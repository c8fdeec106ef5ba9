/**
 * Unary and binary ops, one loop nest over the output with each operand read at its broadcast
 * position. f32 values are computed in f64 from the f32 operands (as the interpreter does) and
 * rounded once at the store; i32 values follow the interpreter's truncate-and-wrap rule: add,
 * sub and mul wrap, div truncates toward zero (x/0 is 0, as ToInt32 of ±∞/NaN is), pow goes
 * through Math.pow. exp (also inside sigmoid and silu) is exp64 (exp.ts), computed in the module:
 * the hot one, in every SwiGLU and softmax. log, sin, cos, tanh and pow are imported from JS Math
 * (wasm has no instructions for them): bit-exact with the interpreter, at a call per element.
 */
import type { Dim } from '../../../graph/dim.js';
import { isStatic } from '../../../graph/dim.js';
import type { BinaryOp, UnaryOp } from '../../../graph/ops.js';
import type { Expr, Thunk } from '../fn.js';
import { exp64 } from './exp.js';
import type { WasmCtx, WasmKernel } from './kernel.js';

/** Element strides of an operand read at the output's index (null where it broadcasts). */
export function broadcastStrides(shape: readonly Dim[], out: readonly Dim[]): (Dim[] | null)[] {
  const lead = out.length - shape.length;
  return out.map((_, i) => {
    if (i < lead) return null;
    const d = shape[i - lead]!;
    if (isStatic(d) && d === 1) return null;
    return shape.slice(i - lead + 1);
  });
}

/**
 * Nested loops over `dims` (row-major). Each operand has one stride per dim (null: 0); `body`
 * gets thunks of the operands' element positions.
 */
export function nest(c: WasmCtx, dims: readonly Dim[], strides: readonly (readonly (Dim[] | null)[])[], body: (offs: Thunk[]) => Expr[]): Expr[] {
  const { f, m, b } = c;
  const levels = dims.map((_, i) => i).filter((i) => !(isStatic(dims[i]!) && dims[i] === 1));
  const build = (li: number, parent: Thunk[]): Expr[] => {
    if (li === levels.length) return body(parent);
    const lv = levels[li]!;
    const mine = strides.map(() => f.local(b.i32));
    const idx = f.local(b.i32);
    const inner = build(li + 1, mine.map((p) => f.at(p)));
    const incs = mine.flatMap((p, j) => {
      const s = strides[j]![lv];
      return s ? [f.set(p, m.i32.add(f.get(p), c.numel(s)))] : [];
    });
    return [...mine.map((p, j) => f.set(p, parent[j]!())), f.for(idx, m.i32.const(0), () => c.dim(dims[lv]!), 1, [...inner, ...incs])];
  };
  return build(0, strides.map(() => () => m.i32.const(0)));
}

const F64_IMPORT = new Set(['exp', 'log', 'sin', 'cos', 'tanh']);

/** A unary op on an f64 value (thunk: the value may be read more than once). */
export function unaryF64(c: WasmCtx, op: UnaryOp, x: Thunk): Expr {
  const { m, b } = c;
  const call = (fn: string, v: Expr) => m.call(fn, [v], b.f64);
  const one = () => m.f64.const(1);
  if (op === 'exp') return call(exp64(c), x());
  if (F64_IMPORT.has(op)) return call(op, x());
  switch (op) {
    case 'neg':
      return m.f64.neg(x());
    case 'abs':
      return m.f64.abs(x());
    case 'sqrt':
      return m.f64.sqrt(x());
    case 'rsqrt':
      return m.f64.div(one(), m.f64.sqrt(x()));
    case 'sigmoid':
      return m.f64.div(one(), m.f64.add(one(), call(exp64(c), m.f64.neg(x()))));
    case 'relu':
      return m.f64.max(x(), m.f64.const(0));
    case 'silu':
      return m.f64.div(x(), m.f64.add(one(), call(exp64(c), m.f64.neg(x()))));
    case 'gelu': {
      const cube = m.call('pow', [x(), m.f64.const(3)], b.f64);
      const inner = m.f64.mul(m.f64.const(Math.sqrt(2 / Math.PI)), m.f64.add(x(), m.f64.mul(m.f64.const(0.044715), cube)));
      return m.f64.mul(m.f64.mul(m.f64.const(0.5), x()), m.f64.add(one(), call('tanh', inner)));
    }
  }
  throw new Error(`wasm backend: no unary rule for ${op}`);
}

export function binaryF64(c: WasmCtx, op: BinaryOp, x: Thunk, y: Thunk): Expr {
  const { m, b } = c;
  switch (op) {
    case 'add':
      return m.f64.add(x(), y());
    case 'sub':
      return m.f64.sub(x(), y());
    case 'mul':
      return m.f64.mul(x(), y());
    case 'div':
      return m.f64.div(x(), y());
    case 'max':
      return m.f64.max(x(), y());
    case 'min':
      return m.f64.min(x(), y());
    case 'pow':
      return m.call('pow', [x(), y()], b.f64);
  }
}

export function binaryI32(c: WasmCtx, op: BinaryOp, x: Thunk, y: Thunk): Expr {
  const { m, b } = c;
  switch (op) {
    case 'add':
      return m.i32.add(x(), y());
    case 'sub':
      return m.i32.sub(x(), y());
    case 'mul':
      return m.i32.mul(x(), y());
    case 'div':
      return m.if(m.i32.eqz(y()), m.i32.const(0), m.if(m.i32.eq(y(), m.i32.const(-1)), m.i32.sub(m.i32.const(0), x()), m.i32.div_s(x(), y())));
    case 'max':
      return m.select(m.i32.gt_s(x(), y()), x(), y());
    case 'min':
      return m.select(m.i32.lt_s(x(), y()), x(), y());
    case 'pow':
      return m.call('powi', [x(), y()], b.i32);
  }
}

/** Load an element as the kernel's working type: f32 → f64, i32 stays. */
export const loadAs = (c: WasmCtx, dtype: string, at: Expr): Expr => (dtype === 'i32' ? c.m.i32.load(0, 4, at) : c.m.f64.promote(c.m.f32.load(0, 4, at)));
export const storeAs = (c: WasmCtx, dtype: string, at: Expr, v: Expr): Expr => (dtype === 'i32' ? c.m.i32.store(0, 4, at, v) : c.m.f32.store(0, 4, at, c.m.f32.demote(v)));
export const elemAt = (c: WasmCtx, base: Expr, off: Thunk): Expr => c.m.i32.add(base, c.m.i32.shl(off(), c.m.i32.const(2)));

export const unaryKernel: WasmKernel = (c) => {
  const dt = c.node.type.dtype;
  const shape = c.node.type.shape;
  const s = broadcastStrides(shape, shape);
  return nest(c, shape, [s, s], ([xo, oo]) => {
    const t = c.f.local(c.b.f64);
    return [c.f.set(t, loadAs(c, dt, elemAt(c, c.in(0), xo!))), storeAs(c, dt, elemAt(c, c.out(), oo!), unaryF64(c, c.node.op as UnaryOp, c.f.at(t)))];
  });
};

export const binaryKernel: WasmKernel = (c) => {
  const dt = c.node.type.dtype;
  const shape = c.node.type.shape;
  const ty = dt === 'i32' ? c.b.i32 : c.b.f64;
  const strides = [broadcastStrides(c.types[0]!.shape, shape), broadcastStrides(c.types[1]!.shape, shape), broadcastStrides(shape, shape)];
  return nest(c, shape, strides, ([ao, bo, oo]) => {
    const [x, y] = [c.f.local(ty), c.f.local(ty)];
    const op = c.node.op as BinaryOp;
    const v = dt === 'i32' ? binaryI32(c, op, c.f.at(x), c.f.at(y)) : binaryF64(c, op, c.f.at(x), c.f.at(y));
    return [c.f.set(x, loadAs(c, dt, elemAt(c, c.in(0), ao!))), c.f.set(y, loadAs(c, dt, elemAt(c, c.in(1), bo!))), storeAs(c, dt, elemAt(c, c.out(), oo!), v)];
  });
};

/** broadcast and transpose: a strided copy of 32-bit elements. */
export function stridedCopy(c: WasmCtx, src: readonly (Dim[] | null)[]): Expr[] {
  const shape = c.node.type.shape;
  return nest(c, shape, [src, broadcastStrides(shape, shape)], ([xo, oo]) => [c.m.i32.store(0, 4, elemAt(c, c.out(), oo!), c.m.i32.load(0, 4, elemAt(c, c.in(0), xo!)))]);
}
