/** reshape: the same bytes. Unplanned reshapes alias their operand (no code); a planned one copies. */
import type { WasmKernel } from './kernel.js';

export const reshapeKernel: WasmKernel = (c) => [c.m.memory.copy(c.out(), c.in(0), c.m.i32.shl(c.numel(c.node.type.shape), c.m.i32.const(2)))];
