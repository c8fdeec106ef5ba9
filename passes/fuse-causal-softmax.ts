/**
 * fuse-causal-softmax — attention's scale, causal mask and softmax in one kernel.
 *
 *   scores [… , Q, K]
 *      │
 *   (mul by a one-element value: the 1/√hd scale)
 *      │
 *   causal_mask (offset)                        ⇒   fused 'causal_softmax' (scores[, scale])
 *      │
 *   softmax (last axis)
 *
 * Row i of a [Q, K] block has only its first i + offset + 1 entries unmasked: the kernel reads,
 * exponentiates and normalises those and writes zeros after them, where the unfused kernels took
 * exp(−∞) over the masked half of every prefill's scores (and stored the scaled and masked copies
 * in between). Matches when the mask (and the mul) are read by nothing else and are not outputs.
 * The body is the exact decomposition; `causalSoftmaxForm` (backends/js) reads it back. Runs after
 * fuse-rope-qk, which leaves the scale, mask and softmax outside its kernel, and before
 * fuse-elementwise, which would otherwise be free to take the mul.
 */
import type { Node } from '../graph/graph.js';
import { isStatic } from '../graph/dim.js';
import type { Pass } from './pass.js';
import { type FusionMatch, type UseInfo, fusionPass, onlyUsedBy } from './rewrite.js';

export const CAUSAL_SOFTMAX = 'causal_softmax';

/** A value of one element (every dim a static 1, or rank 0). */
export const isOneElement = (n: Node | undefined): boolean => n !== undefined && n.type.shape.every((d) => isStatic(d) && d === 1);

function match(sm: Node, byId: ReadonlyMap<number, Node>, uses: UseInfo): FusionMatch | undefined {
  const rank = sm.type.shape.length;
  if (sm.op !== 'softmax' || rank < 2 || sm.type.dtype !== 'f32') return undefined;
  const axis = sm.attrs['axis'] as number;
  if (axis !== -1 && axis !== rank - 1) return undefined;
  const mask = byId.get(sm.inputs[0]!);
  if (mask?.op !== 'causal_mask' || !onlyUsedBy(uses, mask.id, sm.id)) return undefined;
  const mul = byId.get(mask.inputs[0]!);
  if (mul?.op === 'mul' && onlyUsedBy(uses, mul.id, mask.id) && mul.inputs[0] !== mul.inputs[1]) {
    for (const [x, s] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const [xv, sv] = [byId.get(mul.inputs[x]!), byId.get(mul.inputs[s]!)];
      if (isOneElement(sv) && xv && xv.type.shape.length === rank && sv!.type.dtype === 'f32') return { members: [mul, mask, sm], operands: [xv.id, sv!.id] };
    }
  }
  return { members: [mask, sm], operands: [mask.inputs[0]!] };
}

export const fuseCausalSoftmax: Pass = fusionPass('fuse-causal-softmax', 'scale, causal mask and softmax in one kernel that skips the masked entries', CAUSAL_SOFTMAX, match);
