/**
 * The wasm backend's kernels, one per op of graph/ops.ts and one per fused pattern
 * (elementwise, rope_qk, swiglu, causal_softmax; a body of another form runs as its decomposition). Sources
 * (input, param, state, const) are placed by the layout, not computed.
 */
import type { OpKind } from '../../../graph/ops.js';
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { broadcastKernel } from './broadcast.js';
import { causalMaskKernel } from './causal-mask.js';
import { concatKernel } from './concat.js';
import { crossEntropyKernel } from './cross-entropy.js';
import { dropoutMaskKernel } from './dropout-mask.js';
import { binaryKernel, unaryKernel } from './elementwise.js';
import { causalSoftmaxKernel } from './fused-causal-softmax.js';
import { fusedElementwiseKernel } from './fused-elementwise.js';
import { ropeQkKernel } from './fused-rope-qk.js';
import { swigluKernel } from './fused-swiglu.js';
import { gatherKernel } from './gather.js';
import { iotaKernel } from './iota.js';
import type { WasmKernel } from './kernel.js';
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

export const KERNELS: Partial<Record<OpKind, WasmKernel>> = {
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

export const FUSED_KERNELS: Readonly<Record<string, WasmKernel>> = { elementwise: fusedElementwiseKernel, rope_qk: ropeQkKernel, swiglu: swigluKernel, causal_softmax: causalSoftmaxKernel };
