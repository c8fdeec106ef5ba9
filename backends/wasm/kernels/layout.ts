/**
 * The row copier shared by slice, update_slice and concat: `rows` runs of `len` elements, the
 * r-th from x[xo + r·xs] to y[yo + r·ys] (element units), each run one `memory.copy`.
 */
import type { Expr } from '../fn.js';
import type { WasmCtx } from './kernel.js';

export function copyRows(c: WasmCtx, x: () => Expr, xo: () => Expr, xs: () => Expr, y: () => Expr, yo: () => Expr, ys: () => Expr, rows: () => Expr, len: () => Expr): Expr {
  const { m, f, b } = c;
  const r = f.local(b.i32);
  const at = (base: Expr, o: Expr, s: Expr) => m.i32.add(base, m.i32.shl(m.i32.add(o, m.i32.mul(f.get(r), s)), m.i32.const(2)));
  return f.for(r, m.i32.const(0), rows, 1, [m.memory.copy(at(y(), yo(), ys()), at(x(), xo(), xs()), m.i32.shl(len(), m.i32.const(2)))]);
}
