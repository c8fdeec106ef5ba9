/**
 * GFLOP/s of the wasm matmul kernels at LLaMA-small shapes, on 1 and 2 threads (medians of
 * interleaved rounds; each run is one call of the compiled module, so it includes copying the
 * input in and the output out). Run: node --import tsx backends/wasm/bench-kernels.ts
 */
import { GraphBuilder } from '../../graph/builder.js';
import type { Executable } from '../backend.js';
import { createWasmBackend } from './index.js';

const SHAPES = [
  { name: 'matmul 256×768×2048', M: 256, K: 768, N: 2048 },
  { name: 'matvec 2048×768', M: 1, K: 768, N: 2048 },
  { name: 'matvec 32000×768', M: 1, K: 768, N: 32000 },
];
const ROUNDS = Number(process.env['ROUNDS'] ?? 7);

async function build(threads: number, M: number, K: number, N: number): Promise<{ exe: Executable; a: Float32Array }> {
  const b = new GraphBuilder('mm');
  const a = b.add('input', [], { name: 'a', dtype: 'f32', shape: [M, K] });
  const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [N, K] });
  b.output('y', b.add('matmul', [a, w], { transB: true }));
  const exe = await createWasmBackend({ threads }).compile(b.build());
  exe.setWeights({ w: Float32Array.from({ length: N * K }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5) });
  return { exe, a: Float32Array.from({ length: M * K }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5) };
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;

for (const s of SHAPES) {
  const exes = [await build(1, s.M, s.K, s.N), await build(2, s.M, s.K, s.N)];
  const flops = 2 * s.M * s.N * s.K;
  const reps = Math.max(1, Math.round(2e9 / flops / 4));
  const times: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++)
    exes.forEach(({ exe, a }, t) => {
      exe.run({ inputs: { a }, symbols: {} });
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < reps; i++) exe.run({ inputs: { a }, symbols: {} });
      times[t]!.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
    });
  const g = times.map((ts) => flops / median(ts) / 1e9);
  console.log(`${s.name.padEnd(22)} 1 thread ${g[0]!.toFixed(1).padStart(6)} GFLOP/s   2 threads ${g[1]!.toFixed(1).padStart(6)} GFLOP/s`);
  exes.forEach(({ exe }) => exe.dispose?.());
}
