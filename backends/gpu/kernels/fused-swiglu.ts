/**
 * fused swiglu: not in the gpu backend's caps; a Program that has one anyway runs its body as its
 * decomposition (the matmuls and the fused elementwise silu·mul), with a note in the source.
 */
export const SWIGLU_RUNS_AS_DECOMPOSITION = true;
