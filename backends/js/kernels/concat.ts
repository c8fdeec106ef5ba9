/** concat: each operand's runs written at its running position along the axis. */
import { addExpr, mulExpr, paren } from '../codegen.js';
import type { Kernel } from './kernel.js';
import { COPY_ROWS, axisAttr, splitAt } from './layout.js';

export const concatKernel: Kernel = (c) => {
  const ax = axisAttr(c, c.node.type.shape.length);
  const [outer, total, inner] = splitAt(c, c.node.type.shape, ax);
  const copy = c.helper('copyRows', COPY_ROWS);
  let at = '0';
  const lines: string[] = [];
  c.types.forEach((t, i) => {
    const run = mulExpr(paren(c.dim(t.shape[ax]!)), paren(inner));
    lines.push(`${copy}(${c.ins[i]}, 0, ${run}, ${c.out}, ${mulExpr(paren(at), paren(inner))}, ${mulExpr(paren(total), paren(inner))}, ${outer}, ${run});`);
    at = addExpr(at, c.dim(t.shape[ax]!));
  });
  return lines.join('\n');
};
