/**
 * update_slice: the base copied, then the update's runs written over [start, start + len) of the
 * axis. When the base is a state buffer that nothing reads after this node (a KV cache step), the
 * emitter passes the caller's buffer as both base and result and the copy is skipped: only the
 * new rows are written.
 */
import { type Dim, dimAdd } from '../../../graph/dim.js';
import { mulExpr, paren } from '../codegen.js';
import type { Kernel } from './kernel.js';
import { COPY_ROWS, axisAttr, splitAt } from './layout.js';
import { boundsCheck } from './slice.js';

export const updateSliceKernel: Kernel = (c) => {
  const [base, upd] = c.types as [(typeof c.types)[0], (typeof c.types)[0]];
  const ax = axisAttr(c, base!.shape.length);
  const start = c.node.attrs['start'] as Dim;
  const [outer, size, inner] = splitAt(c, base!.shape, ax);
  const len = c.dim(upd!.shape[ax]!);
  const copy = c.helper('copyRows', COPY_ROWS);
  const run = mulExpr(paren(len), paren(inner));
  return {
    check: boundsCheck(c, start, dimAdd(start, upd!.shape[ax]!), base!.shape[ax]!, ax),
    code:
      (c.inPlace ? '' : `${c.out}.set(${c.ins[0]});\n`) +
      `${copy}(${c.ins[1]}, 0, ${run}, ${c.out}, ${mulExpr(paren(c.dim(start)), paren(inner))}, ${mulExpr(paren(size), paren(inner))}, ${outer}, ${run});`,
  };
};
