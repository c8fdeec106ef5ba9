/** broadcast: x read at its broadcast position for every output element. */
import { broadcastStrides, stridedCopy } from './elementwise.js';
import type { WasmKernel } from './kernel.js';

export const broadcastKernel: WasmKernel = (c) => stridedCopy(c, broadcastStrides(c.types[0]!.shape, c.node.type.shape));
