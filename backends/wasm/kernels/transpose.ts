/** transpose: output axis j walks input axis perm[j] (its row-major stride). */
import { stridedCopy } from './elementwise.js';
import type { WasmKernel } from './kernel.js';

export const transposeKernel: WasmKernel = (c) => {
  const shape = c.types[0]!.shape;
  const perm = c.node.attrs['perm'] as number[];
  return stridedCopy(c, perm.map((p) => shape.slice(p + 1)));
};
