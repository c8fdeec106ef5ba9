/**
 * fused rope_qk: the gpu backend has no single kernel for it (the pattern is not in its caps, so
 * the passes do not make it for this backend); a Program that has one anyway runs its body as its
 * decomposition, one kernel per core op, with a note in the generated source.
 */
export const ROPE_QK_RUNS_AS_DECOMPOSITION = true;
