/** gather: one row of the table per index; an index outside [0, V) is an error, as in the interpreter. */
import { productOf } from '../codegen.js';
import { esc, type Kernel, shown } from './kernel.js';

export const gatherKernel: Kernel = (c) => {
  const [table, ids] = c.types as [(typeof c.types)[0], (typeof c.types)[0]];
  const V = c.dim(table!.shape[0]!);
  const row = productOf(c.dims(table!.shape.slice(1)));
  const n = c.numel(ids!.shape);
  const [t, x] = c.ins as [string, string];
  return [
    `for (let i = 0; i < ${n}; i++) {`,
    `  const r = ${x}[i];`,
    `  if (!(r >= 0 && r < ${V})) ${c.raise('K1017', `\`${esc(c.where)}: index \${r} at position \${i} is outside [0, ${shown(V)})\``)}`,
    `  const a = r * ${row}, b = i * ${row};`,
    `  for (let j = 0; j < ${row}; j++) ${c.out}[b + j] = ${t}[a + j];`,
    `}`,
  ].join('\n');
};
