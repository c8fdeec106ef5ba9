/** Shared by the layout kernels: the coordinates of the result element. */
import type { GpuKernelCtx } from './kernel.js';

export function outCoords(c: GpuKernelCtx): { code: string; dims: string[]; vars: string[] } {
  const dims = c.node.type.shape.map(c.dim);
  return { dims, ...c.coords('i', dims, 'o') };
}
