/**
 * The gpu backend's kernels: one per op of graph/ops.ts but dropout_mask (NO_KERNEL), and one
 * per fused pattern (elementwise, rope_qk, swiglu). Sources and consts are bound by the emitter
 * (uploaded), reshape is an alias of its operand's texture, and a fused body not in its kernel's
 * form is inlined as its decomposition.
 */
import type { FusedBody, OpKind } from '../../../graph/ops.js';
import { BINARY_OPS, REDUCE_OPS, UNARY_OPS } from '../../../graph/ops.js';
import { broadcastKernel } from './broadcast.js';
import { causalMaskKernel } from './causal-mask.js';
import { concatKernel } from './concat.js';
import { crossEntropyKernel } from './cross-entropy.js';
import { binaryKernel, unaryKernel } from './elementwise.js';
import { elementwiseForm, fusedElementwiseKernel } from './fused-elementwise.js';
import { ropeQkGpuForm, ropeQkKernel } from './fused-rope-qk.js';
import { swigluGpuForm, swigluKernel } from './fused-swiglu.js';
import { gatherKernel } from './gather.js';
import { iotaKernel } from './iota.js';
import type { GpuKernel } from './kernel.js';
import { matmulKernel } from './matmul.js';
import { oneHotKernel } from './one-hot.js';
import { reduceKernel } from './reduce.js';
import { rmsnormKernel } from './rmsnorm.js';
import { ropeKernel } from './rope.js';
import { scatterAddKernel } from './scatter-add.js';
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
  one_hot: oneHotKernel,
  scatter_add: scatterAddKernel,
  cross_entropy: crossEntropyKernel,
};

/**
 * Ops this backend has no kernel for, and why (the K1019 at compile says so). dropout_mask's hash
 * is uint32 multiplies, shifts and xors; a WebGL1 shader has only float32, exact to 2^24.
 */
export const NO_KERNEL: Readonly<Partial<Record<OpKind, string>>> = {
  dropout_mask: 'its hash needs 32-bit integer arithmetic, which WebGL1 shaders (gpu.js) do not have; make the mask on the js or wasm backend, or pass it in as an input',
};

/** Ops whose integer operand (index) a shader cannot check: it must come from a graph input or a const, checked on the host. */
export const CHECKED_INDICES: Readonly<Partial<Record<OpKind, { readonly operand: number; readonly what: string }>>> = {
  gather: { operand: 1, what: 'index' },
  scatter_add: { operand: 0, what: 'index' },
  cross_entropy: { operand: 1, what: 'target' },
};

export interface FusedKernel {
  readonly form: (body: FusedBody) => boolean;
  readonly kernel: GpuKernel;
}

/** Fused patterns with a kernel of their own (a body of another form runs as its decomposition). */
export const FUSED_KERNELS: Readonly<Record<string, FusedKernel>> = {
  elementwise: { form: elementwiseForm, kernel: fusedElementwiseKernel },
  rope_qk: { form: ropeQkGpuForm, kernel: ropeQkKernel },
  swiglu: { form: swigluGpuForm, kernel: swigluKernel },
};
/**
 * Patterns this backend accepts only by inlining their body. causal_softmax: each output is its
 * own GPU thread either way, so the fused form would skip no work (the wasm and js kernels skip
 * the masked half of each row).
 */
export const INLINED_PATTERNS: readonly string[] = ['causal_softmax'];
