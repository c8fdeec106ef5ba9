/**
 * Type-level tests, compiled by `tsc -p .` (not run): each `@ts-expect-error` line must be an
 * error, and every other line must compile.
 */
import { add, gather, linear, matmul, matmulT, type ModelBuilder, reshape, rmsnorm, type Tensor, transpose } from '../../src/index.js';

export function namedDims(m: ModelBuilder): void {
  const seq = m.dim('seq');
  const dim = m.dim('dim', 64);
  const hidden = m.dim('hidden', 256);
  const vocab = m.dim('vocab', 100);

  const x = m.input('x', 'f32', [seq, dim]);
  const x2: Tensor<['seq', 'dim']> = x;
  const up = m.param('up', [dim, hidden]);
  const down = m.param('down', [hidden, dim]);
  const h: Tensor<['seq', 'hidden']> = matmul(x, up);
  const y: Tensor<['seq', 'dim']> = matmul(h, down);

  // @ts-expect-error: [seq, dim] @ [hidden, dim] contracts dim with hidden
  matmul(x, down);
  // @ts-expect-error: linear wants W[out, in] with in = dim
  linear(x, up);
  linear(x, m.param('w_out', [hidden, dim]));
  // @ts-expect-error: q·kᵀ over differently named last dims
  matmulT(h, x);
  // @ts-expect-error: the result's names are checked too
  const wrong: Tensor<['seq', 'hidden']> = matmul(h, down);
  // @ts-expect-error: rmsnorm's weight must be [dim]
  rmsnorm(x, m.param('g', [hidden]), 1e-5);

  // plain numbers widen to `string` and match any name, in either operand
  const w = m.param('w', [64, 256]);
  const u: Tensor<['seq', string]> = matmul(x, w);
  matmul(u, down);
  linear(m.input('z', 'f32', [7, 64]), m.param('wz', [hidden, dim]));

  // layout ops carry the names along
  const t: Tensor<['dim', 'seq']> = transpose(x, [1, 0]);
  const r: Tensor<['seq', 'hidden']> = reshape(y, [seq, hidden]);
  const e: Tensor<['seq', 'dim']> = gather(m.param('emb', [vocab, dim]), m.input('tok', 'i32', [seq]));
  const b: Tensor<['seq', 'dim']> = add(x, m.param('bias', [dim]));
  // @ts-expect-error: a transposed tensor is not the original
  const notT: Tensor<['seq', 'dim']> = transpose(x, [1, 0]);
  void [x2, t, r, e, b, wrong, notT];
}
