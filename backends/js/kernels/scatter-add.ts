/**
 * scatter_add: out[v, …] = Σ updates[i, …] over the positions i whose index is v, summed in
 * doubles in position order (the interpreter's sum, rounded once); rows no index names are 0. The
 * positions are chained per row first (a list through `next`), so each output row is summed in
 * one pass. An index outside [0, rows) is an error (K1017), as gather's is.
 */
import type { Dim } from '../../../graph/dim.js';
import { productOf } from '../codegen.js';
import { esc, type Kernel } from './kernel.js';

const SCATTER_ADD = `/** out[v, j] = Σ upd[i, j] over i with idx[i] = v, in order of i, in doubles. */
function scatterAdd(idx, upd, out, n, rows, row, where) {
  for (let i = 0; i < n; i++) {
    const v = idx[i];
    if (!(v >= 0 && v < rows)) throw fail('K1017', \`\${where}: index \${v} at position \${i} is outside [0, \${rows})\`);
  }
  const head = new Int32Array(rows).fill(-1), next = new Int32Array(n);
  for (let i = n - 1; i >= 0; i--) {
    next[i] = head[idx[i]];
    head[idx[i]] = i;
  }
  const acc = new Float64Array(row);
  for (let v = 0; v < rows; v++) {
    const o = v * row;
    if (head[v] < 0) {
      out.fill(0, o, o + row);
      continue;
    }
    acc.fill(0);
    for (let i = head[v]; i >= 0; i = next[i]) {
      const b = i * row;
      for (let j = 0; j < row; j++) acc[j] += upd[b + j];
    }
    for (let j = 0; j < row; j++) out[o + j] = acc[j];
  }
}`;

export const scatterAddKernel: Kernel = (c) => {
  const [idx, upd] = c.types as [(typeof c.types)[0], (typeof c.types)[0]];
  const row = productOf(c.dims(upd!.shape.slice(idx!.shape.length)));
  const rows = c.dim(c.node.attrs['rows'] as Dim);
  return `${c.helper('scatterAdd', SCATTER_ADD)}(${c.ins[0]}, ${c.ins[1]}, ${c.out}, ${c.numel(idx!.shape)}, ${rows}, ${row}, \`${esc(c.where)}\`);`;
};
