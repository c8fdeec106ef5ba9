/**
 * The kernel rows: y[M, N] = x[M, K] · Wᵀ with W stored [N, K] — the shape of every linear layer
 * in a LLaMA graph (`matmul` with transB). kiln's figures come from a one-op graph compiled
 * through the whole path (emit → run), so a call includes copying x in and y out (into an array
 * reused across calls), as a model step does around its kernels. A sample repeats the call until
 * it lasts about `targetMs`.
 */
import type { Backend } from '../backends/backend.js';
import { GraphBuilder } from '../graph/builder.js';
import { mulberry32 } from '../src/runtime/rng.js';

export interface KernelSpec {
  readonly id: string;
  readonly label: string;
  readonly M: number;
  readonly K: number;
  readonly N: number;
  /** Where its weights live when it runs (what bounds it). */
  readonly note: string;
}

export const KERNELS: readonly KernelSpec[] = [
  { id: 'matmul-256x768x2048', label: 'matmul 256×768×2048', M: 256, K: 768, N: 2048, note: 'compute (prefill)' },
  { id: 'matvec-2048x768', label: 'matvec 2048×768', M: 1, K: 768, N: 2048, note: 'cache (6 MB of weights)' },
  { id: 'matvec-32000x768', label: 'matvec 32000×768', M: 1, K: 768, N: 32000, note: 'RAM (98 MB of weights)' },
];

export const flops = (k: KernelSpec): number => 2 * k.M * k.N * k.K;

export function randomArray(n: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = u() - 0.5;
  return a;
}

/** Warm `call` up, then return a sampler: each sample runs it enough times to last ~targetMs and gives GFLOP/s. */
export async function gflopsSampler(call: () => unknown, kernel: KernelSpec, targetMs: number): Promise<() => Promise<number>> {
  call();
  const t0 = performance.now();
  call();
  const once = Math.max(performance.now() - t0, 0.001);
  const reps = Math.min(1000, Math.max(1, Math.ceil(targetMs / once)));
  return async () => {
    const t = performance.now();
    for (let i = 0; i < reps; i++) call();
    const ms = performance.now() - t;
    return (flops(kernel) * reps) / ms / 1e6;
  };
}

/** kiln's kernel on `backend`, through a one-op graph. */
export async function kilnKernel(backend: Backend, k: KernelSpec, targetMs: number): Promise<() => Promise<number>> {
  const b = new GraphBuilder(`bench_${k.id.replaceAll('-', '_')}`);
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [k.M, k.K] });
  const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [k.N, k.K] });
  b.output('y', b.add('matmul', [x, w], { transB: true }));
  const exe = await backend.compile(b.build());
  exe.setWeights({ w: randomArray(k.N * k.K, 2) });
  // y goes into one array reused across calls (RunArgs.into), not a new one per call.
  const args = { inputs: { x: randomArray(k.M * k.K, 3) }, symbols: {}, into: { y: new Float32Array(k.M * k.N) } };
  return gflopsSampler(() => exe.run(args), k, targetMs);
}
