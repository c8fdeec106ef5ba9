/**
 * The pipeline `kiln compile` runs, read top to bottom. Each pass carries its one-line reason
 * (shown in the compile report); the comment here says why it sits where it does.
 */
import { constantFold } from './constant-fold.js';
import { cse } from './cse.js';
import { dce } from './dce.js';
import { fuseCausalSoftmax } from './fuse-causal-softmax.js';
import { fuseElementwise } from './fuse-elementwise.js';
import { fuseRopeQk } from './fuse-rope-qk.js';
import { fuseSwiglu } from './fuse-swiglu.js';
import { insertKvCache } from './insert-kv-cache.js';
import type { Pass } from './pass.js';
import { planMemory } from './plan-memory.js';

export const PIPELINE: readonly Pass[] = [
  constantFold, //    first: later passes see fewer, simpler nodes, and cse sees equal consts
  cse, //             after folding, so folded values merge too
  dce, //             sweeps what folding and merging left unread
  insertKvCache, //   on the clean full graph; keeps rope(q)·rope(k)ᵀ so the fusion still matches
  fuseRopeQk, //      before fuse-elementwise, on the step graph's score matmuls
  fuseSwiglu, //      before fuse-elementwise, which would otherwise take silu·up as a chain
  fuseCausalSoftmax, // after fuse-rope-qk (which leaves scale, mask and softmax out), before fuse-elementwise
  fuseElementwise, // last fusion: whatever elementwise chains the kernel fusions left
  dce, //             drops values the fusions absorbed
  planMemory, //      last: the node order is the schedule, and no pass may add buffers after it
];
