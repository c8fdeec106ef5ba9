/** iota: start + the index along the axis, for every element. */
import type { Dim } from '../../../graph/dim.js';
import type { Kernel } from './kernel.js';
import { axisAttr, splitAt } from './layout.js';

export const iotaKernel: Kernel = (c) => {
  const ax = axisAttr(c, c.node.type.shape.length);
  const [outer, len, inner] = splitAt(c, c.node.type.shape, ax);
  const start = c.dim(c.node.attrs['start'] as Dim);
  return [
    `for (let a = 0, o = 0; a < ${outer}; a++)`,
    `  for (let i = 0; i < ${len}; i++)`,
    `    for (let j = 0; j < ${inner}; j++) ${c.out}[o++] = ${start} + i;`,
  ].join('\n');
};
