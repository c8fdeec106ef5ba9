/** slice: one run per outer index, [start, end) of the axis with everything inside it. */
import { type Dim, isStatic } from '../../../graph/dim.js';
import { isNumberExpr, mulExpr, numberOf, paren } from '../codegen.js';
import { esc, type Kernel, type KernelCtx, shown } from './kernel.js';
import { COPY_ROWS, axisAttr, splitAt } from './layout.js';

/** A run-time check that [start, start + len) lies in [0, size), unless the dims settle it already. */
export function boundsCheck(c: KernelCtx, start: Dim, end: Dim, size: Dim, axis: number): string {
  if (isStatic(start) && isStatic(end) && isStatic(size) && start >= 0 && end >= start && end <= size) return '';
  const [s, e, n] = [c.dim(start), c.dim(end), c.dim(size)];
  // Comparisons of two numbers are settled now: left out when false, kept (as true) when not.
  const tests = (
    [
      [s, '<', '0'],
      [e, '<', s],
      [e, '>', n],
    ] as const
  ).flatMap(([a, op, b]) => {
    if (!isNumberExpr(a) || !isNumberExpr(b)) return [`${a} ${op} ${b}`];
    return (op === '<' ? numberOf(a) < numberOf(b) : numberOf(a) > numberOf(b)) ? ['true'] : [];
  });
  if (tests.length === 0) return '';
  return `if (${tests.join(' || ')}) ${c.raise('K1009', `\`${esc(c.where)}: [${shown(s)}, ${shown(e)}) is outside axis ${axis} of size ${shown(n)}\``)}`;
}

export const sliceKernel: Kernel = (c) => {
  const x = c.types[0]!;
  const ax = axisAttr(c, x.shape.length);
  const [start, end] = [c.node.attrs['start'] as Dim, c.node.attrs['end'] as Dim];
  const [outer, size, inner] = splitAt(c, x.shape, ax);
  const len = c.dim(c.node.type.shape[ax]!);
  const copy = c.helper('copyRows', COPY_ROWS);
  const run = mulExpr(paren(len), paren(inner));
  return {
    check: boundsCheck(c, start, end, x.shape[ax]!, ax),
    code: `${copy}(${c.ins[0]}, ${mulExpr(paren(c.dim(start)), paren(inner))}, ${mulExpr(paren(size), paren(inner))}, ${c.out}, 0, ${run}, ${outer}, ${run});`,
  };
};
