/**
 * The gpu backend's kernels: one per op of graph/ops.ts and the fused elementwise pattern. Sources
 * and consts are bound by the emitter (uploaded), reshape is an alias of its operand's texture, and
 * fused patterns without a kernel here (rope_qk, swiglu) or bodies not in the kernel's form are
 * inlined as their decomposition.
 */
import type { FusedBody, OpKind } from '../../../graph/ops.js';
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { broadcastKernel } from './broadcast.js';
import { causalMaskKernel } from './causal-mask.js';
import { concatKernel } from './concat.js';
import { binaryKernel, unaryKernel } from './elementwise.js';
import { elementwiseForm, fusedElementwiseKernel } from './fused-elementwise.js';
import { gatherKernel } from './gather.js';
import { iotaKernel } from './iota.js';
import type { GpuKernel } from './kernel.js';
import { matmulKernel } from './matmul.js';
import { reduceKernel } from './reduce.js';
import { rmsnormKernel } from './rmsnorm.js';
import { ropeKernel } from './rope.js';
import { sliceKernel } from './slice.js';
import { softmaxKernel } from './softmax.js';
import { transposeKernel } from './transpose.js';
import { updateSliceKernel } from './update-slice.js';

export const KERNELS: Partial<Record<OpKind, GpuKernel>> = {
  ...Object.fromEntries(UNARY_OPS.map((op) => [op, unaryKernel])),
  ...Object.fromEntries(BINARY_OPS.map((op) => [op, binaryKernel])),
  ...Object.fromEntries(REDUCE_OPS.map((op) => [op, reduceKernel])),
  iota: iotaKernel,
  matmul: matmulKernel,
  transpose: transposeKernel,
  slice: sliceKernel,
  update_slice: updateSliceKernel,
  concat: concatKernel,
  broadcast: broadcastKernel,
  gather: gatherKernel,
  softmax: softmaxKernel,
  rmsnorm: rmsnormKernel,
  rope: ropeKernel,
  causal_mask: causalMaskKernel,
};

export interface FusedKernel {
  readonly form: (body: FusedBody) => boolean;
  readonly kernel: GpuKernel;
}

/** Fused patterns with a kernel of their own; others known to the passes run as their decomposition. */
export const FUSED_KERNELS: Readonly<Record<string, FusedKernel>> = {
  elementwise: { form: elementwiseForm, kernel: fusedElementwiseKernel },
};
/** Patterns this backend accepts by inlining their body. */
export const INLINED_PATTERNS: readonly string[] = ['rope_qk', 'swiglu'];
