/** What the per-op tests share: a one-node graph run in the interpreter, and exact expectations. */
import { expect } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import type { Dim } from '../graph/dim.js';
import type { DType } from '../graph/dtype.js';
import { KilnError } from '../graph/errors.js';
import { interpret } from '../graph/interpret.js';
import type { Attrs, OpKind } from '../graph/ops.js';
import type { HostTensor } from '../graph/tensor.js';

/** Run one `op` on inputs x0, x1, … (declared with `shapes`, or the given tensors' shapes). */
export function runOp(op: OpKind, xs: HostTensor[], attrs: Attrs = {}, opts: { shapes?: Dim[][]; symbols?: Record<string, number> } = {}): HostTensor {
  const g = new GraphBuilder('t');
  const ids = xs.map((x, i) => g.add('input', [], { name: `x${i}`, dtype: x.dtype, shape: opts.shapes?.[i] ?? x.shape }));
  g.output('out', g.add(op, ids, attrs));
  const out = interpret(g.build(), { inputs: Object.fromEntries(xs.map((x, i) => [`x${i}`, x])), symbols: opts.symbols }).out;
  if (!out) throw new Error('no output');
  return out;
}

/** Shape, dtype and values (to `digits` significant digits; -0 counts as 0, NaN as NaN). */
export function expectT(t: HostTensor, shape: number[], data: number[], dtype: DType = 'f32', digits = 10): void {
  const r = (v: number) => (v === 0 ? 0 : Number(v.toPrecision(digits)));
  expect({ dtype: t.dtype, shape: t.shape, data: Array.from(t.data, r) }).toEqual({ dtype, shape, data: data.map(r) });
}

/** `fn` throws a KilnError with exactly this code and message. */
export function expectKiln(fn: () => unknown, code: string, message: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    expect({ code: (e as KilnError).code, message: (e as KilnError).message }).toEqual({ code, message });
    return;
  }
  expect.fail('no error thrown');
}
