/**
 * The js backend's kernels: one per op of graph/ops.ts, and one per fused pattern. Sources
 * (input, param, state, const) are bound by the emitter, not computed, so they have no kernel.
 * A fused pattern's `form` says whether a body has the shape its kernel reads; a body that does
 * not runs as its decomposition (the emitter inlines it), with a note in the generated source.
 */
import type { FusedBody, OpKind } from '../../../graph/ops.js';
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { broadcastKernel } from './broadcast.js';
import { causalMaskKernel } from './causal-mask.js';
import { concatKernel } from './concat.js';
import { crossEntropyKernel } from './cross-entropy.js';
import { dropoutMaskKernel } from './dropout-mask.js';
import { binaryKernel, unaryKernel } from './elementwise.js';
import { causalSoftmaxForm, causalSoftmaxKernel } from './fused-causal-softmax.js';
import { elementwiseForm, fusedElementwiseKernel } from './fused-elementwise.js';
import { ropeQkForm, ropeQkKernel } from './fused-rope-qk.js';
import { swigluForm, swigluKernel } from './fused-swiglu.js';
import { gatherKernel } from './gather.js';
import { iotaKernel } from './iota.js';
import type { Kernel } from './kernel.js';
import { matmulKernel } from './matmul.js';
import { oneHotKernel } from './one-hot.js';
import { reduceKernel } from './reduce.js';
import { reshapeKernel } from './reshape.js';
import { rmsnormKernel } from './rmsnorm.js';
import { ropeKernel } from './rope.js';
import { scatterAddKernel } from './scatter-add.js';
import { sliceKernel } from './slice.js';
import { softmaxKernel } from './softmax.js';
import { transposeKernel } from './transpose.js';
import { updateSliceKernel } from './update-slice.js';

export const KERNELS: Partial<Record<OpKind, Kernel>> = {
  ...Object.fromEntries(UNARY_OPS.map((op) => [op, unaryKernel])),
  ...Object.fromEntries(BINARY_OPS.map((op) => [op, binaryKernel])),
  ...Object.fromEntries(REDUCE_OPS.map((op) => [op, reduceKernel])),
  iota: iotaKernel,
  matmul: matmulKernel,
  reshape: reshapeKernel,
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
  one_hot: oneHotKernel,
  scatter_add: scatterAddKernel,
  cross_entropy: crossEntropyKernel,
  dropout_mask: dropoutMaskKernel,
};

export interface FusedKernel {
  /** Whether the kernel can compute this body directly. */
  readonly form: (body: FusedBody) => boolean;
  readonly kernel: Kernel;
}

export const FUSED_KERNELS: Readonly<Record<string, FusedKernel>> = {
  rope_qk: { form: (b) => ropeQkForm(b) !== undefined, kernel: ropeQkKernel },
  causal_softmax: { form: (b) => causalSoftmaxForm(b) !== undefined, kernel: causalSoftmaxKernel },
  swiglu: { form: (b) => swigluForm(b) !== undefined, kernel: swigluKernel },
  elementwise: { form: elementwiseForm, kernel: fusedElementwiseKernel },
};
