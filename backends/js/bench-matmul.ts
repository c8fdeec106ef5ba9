/**
 * How fast the js backend's matmul kernel is, through the whole path (graph → emitted module →
 * run): x[256, 768] · W[2048, 768]ᵀ and the same without transB. Prints GFLOP/s (median of 5).
 *   node --import tsx backends/js/bench-matmul.ts
 */
import { GraphBuilder } from '../../graph/builder.js';
import { jsBackend } from './index.js';

const [M, K, N] = [256, 768, 2048];
for (const transB of [true, false]) {
  const b = new GraphBuilder('bench');
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [M, K] });
  const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: transB ? [N, K] : [K, N] });
  b.output('y', b.add('matmul', [x, w], { transB }));
  const exe = await jsBackend.compile(b.build());
  exe.setWeights({ w: Float32Array.from({ length: N * K }, () => Math.random() - 0.5) });
  const args = { inputs: { x: Float32Array.from({ length: M * K }, () => Math.random() - 0.5) }, symbols: {} };
  exe.run(args);
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    exe.run(args);
    ms.push(performance.now() - t0);
  }
  ms.sort((p, q) => p - q);
  const t = ms[2]!;
  console.log(`matmul${transB ? ' transB' : ''} ${M}×${K}×${N}: ${t.toFixed(0)} ms, ${((2 * M * N * K) / t / 1e6).toFixed(2)} GFLOP/s`);
}
