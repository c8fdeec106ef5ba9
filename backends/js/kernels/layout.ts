/**
 * The row copier shared by slice, update_slice and concat: `rows` runs of `len` elements, the
 * r-th from x[xo + r·xs] to y[yo + r·ys]. Splitting a shape at an axis into (outer, axis, inner)
 * makes each of those ops a set of such runs.
 */
import type { Dim } from '../../../graph/dim.js';
import { productOf } from '../codegen.js';
import type { KernelCtx } from './kernel.js';

export const COPY_ROWS = `/** rows runs of len elements: x[xo + r·xs …] → y[yo + r·ys …]. */
function copyRows(x, xo, xs, y, yo, ys, rows, len) {
  for (let r = 0; r < rows; r++) {
    const a = xo + r * xs, b = yo + r * ys;
    for (let i = 0; i < len; i++) y[b + i] = x[a + i];
  }
}`;

/** (outer, size, inner) of `shape` split at `axis`, as JS expressions. */
export function splitAt(c: KernelCtx, shape: readonly Dim[], axis: number): [string, string, string] {
  const d = c.dims(shape);
  return [productOf(d.slice(0, axis)), d[axis]!, productOf(d.slice(axis + 1))];
}

/** Normalise a possibly negative axis attribute against a rank. */
export function axisAttr(c: KernelCtx, rank: number, name = 'axis'): number {
  const a = c.node.attrs[name] as number;
  return a < 0 ? a + rank : a;
}
