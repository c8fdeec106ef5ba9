/**
 * matmul: a[…, M, K] · b[…, K, N] (or b[…, N, K] with transB), batch dims broadcast.
 *
 * Register-tiled: each step of the k loop loads 4 values of a and 4 of b and updates a 4×4 block
 * of 16 accumulators, so every load feeds four multiply-adds (a naive loop does one). Accumulators
 * are doubles (JS arithmetic) and each output sums over k in order 0…K−1, as the interpreter does;
 * the result is rounded to f32 once, when stored. Leftover rows and columns take 1×4 and 1×1 paths.
 */
import { isStatic, productEq } from '../../../graph/dim.js';
import { loopNest, mulExpr, paren } from '../codegen.js';
import { broadcastStrides } from './elementwise.js';
import type { Kernel } from './kernel.js';

const ACC = [0, 1, 2, 3].flatMap((i) => [0, 1, 2, 3].map((j) => `c${i}${j}`));

/** The 4×4 tile body for out rows m…m+3, columns n…n+3; `bAt(j)` is b's k-th element of column n+j. */
function tile(aRow: (i: number) => string, bAt: (j: number) => string, kStep: string): string {
  const lines = [
    `let ${ACC.map((a) => `${a} = 0`).join(', ')};`,
    `for (let k = 0; k < K; k++) {`,
    `  const x0 = a[${aRow(0)}], x1 = a[${aRow(1)}], x2 = a[${aRow(2)}], x3 = a[${aRow(3)}];`,
    `  const y0 = b[${bAt(0)}], y1 = b[${bAt(1)}], y2 = b[${bAt(2)}], y3 = b[${bAt(3)}];`,
    ...[0, 1, 2, 3].map((i) => `  ${[0, 1, 2, 3].map((j) => `c${i}${j} += x${i} * y${j};`).join(' ')}`),
    kStep ? `  ${kStep}` : '',
    `}`,
    `const o = oo + m * N + n;`,
    ...[0, 1, 2, 3].map((i) => `${[0, 1, 2, 3].map((j) => `out[o${i ? ` + ${i === 1 ? 'N' : `${i} * N`}` : ''}${j ? ` + ${j}` : ''}] = c${i}${j};`).join(' ')}`),
  ];
  return lines.filter((l) => l !== '').join('\n');
}

const MATMUL_TB = `/** out[m, n] = Σₖ a[m, k]·b[n, k] (b stored [N, K], as weights are): 4×4 register tiles. */
function matmulTB(a, ao, b, bo, out, oo, M, N, K) {
  let m = 0;
  for (; m + 4 <= M; m += 4) {
    const a0 = ao + m * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      const b0 = bo + n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
${tile((i) => `a${i} + k`, (j) => `b${j} + k`, '')
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
    }
    for (; n < N; n++) {
      const bn = bo + n * K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const y = b[bn + k];
        s0 += a[a0 + k] * y; s1 += a[a1 + k] * y; s2 += a[a2 + k] * y; s3 += a[a3 + k] * y;
      }
      const o = oo + m * N + n;
      out[o] = s0; out[o + N] = s1; out[o + 2 * N] = s2; out[o + 3 * N] = s3;
    }
  }
  for (; m < M; m++) {
    const am = ao + m * K;
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      const b0 = bo + n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = a[am + k];
        s0 += x * b[b0 + k]; s1 += x * b[b1 + k]; s2 += x * b[b2 + k]; s3 += x * b[b3 + k];
      }
      const o = oo + m * N + n;
      out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
    }
    for (; n < N; n++) {
      const bn = bo + n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[am + k] * b[bn + k];
      out[oo + m * N + n] = s;
    }
  }
}`;

const MATMUL_NN = `/** out[m, n] = Σₖ a[m, k]·b[k, n] (b stored [K, N]): 4×4 register tiles. */
function matmulNN(a, ao, b, bo, out, oo, M, N, K) {
  let m = 0;
  for (; m + 4 <= M; m += 4) {
    const a0 = ao + m * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      let bk = bo + n;
${tile((i) => `a${i} + k`, (j) => (j ? `bk + ${j}` : 'bk'), 'bk += N;')
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
    }
    for (; n < N; n++) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0; k < K; k++) {
        const y = b[bo + k * N + n];
        s0 += a[a0 + k] * y; s1 += a[a1 + k] * y; s2 += a[a2 + k] * y; s3 += a[a3 + k] * y;
      }
      const o = oo + m * N + n;
      out[o] = s0; out[o + N] = s1; out[o + 2 * N] = s2; out[o + 3 * N] = s3;
    }
  }
  for (; m < M; m++) {
    const am = ao + m * K;
    let n = 0;
    for (; n + 4 <= N; n += 4) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = 0, bk = bo + n; k < K; k++, bk += N) {
        const x = a[am + k];
        s0 += x * b[bk]; s1 += x * b[bk + 1]; s2 += x * b[bk + 2]; s3 += x * b[bk + 3];
      }
      const o = oo + m * N + n;
      out[o] = s0; out[o + 1] = s1; out[o + 2] = s2; out[o + 3] = s3;
    }
    for (; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[am + k] * b[bo + k * N + n];
      out[oo + m * N + n] = s;
    }
  }
}`;

export function matmulHelper(transB: boolean): { name: string; source: string } {
  return transB ? { name: 'matmulTB', source: MATMUL_TB } : { name: 'matmulNN', source: MATMUL_NN };
}

export const matmulKernel: Kernel = (c) => {
  const [a, b] = c.ins as [string, string];
  const [ta, tb] = c.types as [(typeof c.types)[0], (typeof c.types)[0]];
  const transB = c.node.attrs['transB'] === true;
  const { name, source } = matmulHelper(transB);
  const fn = c.helper(name, source);
  const [M, K] = c.dims(ta!.shape.slice(-2));
  const N = c.dim(tb!.shape.at(transB ? -2 : -1)!);
  const [ab, bb] = [ta!.shape.slice(0, -2), tb!.shape.slice(0, -2)];
  const ob = c.node.type.shape.slice(0, -2);
  const [mk, kn, mn] = [mulExpr(paren(M!), paren(K!)), mulExpr(paren(K!), paren(N)), mulExpr(paren(M!), paren(N))];
  const call = (ao: string, bo: string, oo: string) => `${fn}(${a}, ${ao}, ${b}, ${bo}, ${c.out}, ${oo}, ${M}, ${N}, ${K});`;
  if (ob.every((d) => isStatic(d) && d === 1)) return call('0', '0', '0');
  const same = (s: typeof ab) => s.length === ob.length && productEq(s, ob);
  if (same(ab) && same(bb)) {
    return `for (let t = 0; t < ${c.numel(ob)}; t++) ${call(mulExpr('t', mk), mulExpr('t', kn), mulExpr('t', mn))}`;
  }
  // Broadcast batch dims: walk the output's batch index, each operand at its own batch offset.
  const sa = broadcastStrides(c, ab, ob);
  const sb = broadcastStrides(c, bb, ob);
  return loopNest(c.dims(ob), [sa, sb], ([pa, pb]) => call(mulExpr(paren(pa!), mk), mulExpr(paren(pb!), kn), mulExpr('o', mn)));
};
