/**
 * fused swiglu: act(x·W1ᵀ) ⊙ (x·W3ᵀ) in one loop nest (act is SiLU for SwiGLU; any unary op is
 * read from the body). For each 4×4 output tile the gate accumulators run over k, park in a small
 * double scratch, then the up accumulators run and the tile is written as act(gate)·up: the gate
 * and up projections are never stored. Sums are doubles over k in order, as in the interpreter.
 */
import type { Dim } from '../../../graph/dim.js';
import { dimEq } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import { bodyArgIndex, type FusedBody, type UnaryOp } from '../../../graph/ops.js';
import { UNARY_OPS } from '../../../graph/ops.js';
import { productOf } from '../codegen.js';
import { unaryExpr } from './elementwise.js';
import type { Kernel } from './kernel.js';

export interface SwigluForm {
  readonly x: number;
  readonly gate: number;
  readonly up: number;
  readonly act: UnaryOp;
}

/** mul(act(matmul(x, W1, transB)), matmul(x, W3, transB)), operands of the mul in either order. */
export function swigluForm(body: FusedBody): SwigluForm | undefined {
  const byId = new Map(body.nodes.map((n) => [n.id, n]));
  const mul = byId.get(body.outputs[0]?.value ?? -1);
  if (mul?.op !== 'mul') return undefined;
  const linear = (n: Node | undefined) => (n?.op === 'matmul' && n.attrs['transB'] === true ? n : undefined);
  for (const [i, j] of [
    [0, 1],
    [1, 0],
  ] as const) {
    const act = byId.get(mul.inputs[i]!);
    const up = linear(byId.get(mul.inputs[j]!));
    if (!act || !(UNARY_OPS as readonly string[]).includes(act.op) || !up) continue;
    const gate = linear(byId.get(act.inputs[0]!));
    if (!gate || gate.inputs[0] !== up.inputs[0]) continue;
    const [x, w1, w3] = [gate.inputs[0]!, gate.inputs[1]!, up.inputs[1]!].map((id) => byId.get(id));
    const [xi, gi, ui] = [bodyArgIndex(x), bodyArgIndex(w1), bodyArgIndex(w3)];
    if (xi === undefined || gi === undefined || ui === undefined) continue;
    const [ws1, ws3] = [w1!.type.shape, w3!.type.shape];
    if (ws1.length !== 2 || ws3.length !== 2 || !ws1.every((d, k) => dimEq(d, ws3[k]!)) || x!.type.shape.length < 2) continue;
    return { x: xi, gate: gi, up: ui, act: act.op as UnaryOp };
  }
  return undefined;
}

const ACT_NAME: Record<string, string> = {};
const name = (act: UnaryOp) => (ACT_NAME[act] ??= `swiglu${act[0]!.toUpperCase()}${act.slice(1)}`);

function helperSource(act: UnaryOp): string {
  const f = (v: string) => unaryExpr(act, v);
  const rows = [0, 1, 2, 3];
  const tile = (w: string, acc: (i: number, j: number) => string) => [
    `      {`,
    `        const b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;`,
    `        let ${rows.flatMap((i) => rows.map((j) => `c${i}${j} = 0`)).join(', ')};`,
    `        for (let k = 0; k < K; k++) {`,
    `          const x0 = x[a0 + k], x1 = x[a1 + k], x2 = x[a2 + k], x3 = x[a3 + k];`,
    `          const y0 = ${w}[b0 + k], y1 = ${w}[b1 + k], y2 = ${w}[b2 + k], y3 = ${w}[b3 + k];`,
    ...rows.map((i) => `          ${rows.map((j) => `c${i}${j} += x${i} * y${j};`).join(' ')}`),
    `        }`,
    ...rows.map((i) => `        ${rows.map((j) => acc(i, j)).join(' ')}`),
    `      }`,
  ];
  return [
    `/** out[m, n] = ${f('g')} · u with g = Σₖ x[m, k]·wg[n, k], u = Σₖ x[m, k]·wu[n, k]. */`,
    `function ${name(act)}(x, wg, wu, out, M, N, K) {`,
    `  const gt = new Float64Array(16);`,
    `  let m = 0;`,
    `  for (; m + 4 <= M; m += 4) {`,
    `    const a0 = m * K, a1 = a0 + K, a2 = a1 + K, a3 = a2 + K;`,
    `    let n = 0;`,
    `    for (; n + 4 <= N; n += 4) {`,
    ...tile('wg', (i, j) => `gt[${i * 4 + j}] = c${i}${j};`),
    ...tile('wu', (i, j) => `{ const g = gt[${i * 4 + j}]; out[(m + ${i}) * N + n + ${j}] = ${f('g')} * c${i}${j}; }`),
    `    }`,
    `    for (; n < N; n++)`,
    `      for (let i = 0; i < 4; i++) {`,
    `        let g = 0, u = 0;`,
    `        for (let k = 0, a = (m + i) * K, b = n * K; k < K; k++) { g += x[a + k] * wg[b + k]; u += x[a + k] * wu[b + k]; }`,
    `        out[(m + i) * N + n] = ${f('g')} * u;`,
    `      }`,
    `  }`,
    `  for (; m < M; m++) {`,
    `    const a = m * K;`,
    `    let n = 0;`,
    `    for (; n + 4 <= N; n += 4) {`,
    `      const b0 = n * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;`,
    `      let g0 = 0, g1 = 0, g2 = 0, g3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0;`,
    `      for (let k = 0; k < K; k++) {`,
    `        const v = x[a + k];`,
    `        g0 += v * wg[b0 + k]; g1 += v * wg[b1 + k]; g2 += v * wg[b2 + k]; g3 += v * wg[b3 + k];`,
    `        u0 += v * wu[b0 + k]; u1 += v * wu[b1 + k]; u2 += v * wu[b2 + k]; u3 += v * wu[b3 + k];`,
    `      }`,
    `      const o = m * N + n;`,
    ...[0, 1, 2, 3].map((j) => `      { const g = g${j}; out[o + ${j}] = ${f('g')} * u${j}; }`),
    `    }`,
    `    for (; n < N; n++) {`,
    `      let g = 0, u = 0;`,
    `      for (let k = 0, b = n * K; k < K; k++) { g += x[a + k] * wg[b + k]; u += x[a + k] * wu[b + k]; }`,
    `      out[m * N + n] = ${f('g')} * u;`,
    `    }`,
    `  }`,
    `}`,
  ].join('\n');
}

export const swigluKernel: Kernel = (c) => {
  const f = swigluForm(c.node.attrs['body'] as FusedBody)!;
  const fn = c.helper(name(f.act), helperSource(f.act));
  const xd = c.dims(c.types[f.x]!.shape);
  const K = xd.at(-1)!;
  const N = c.dim((c.types[f.gate]!.shape as Dim[])[0]!);
  const M = productOf(xd.slice(0, -1));
  return `${fn}(${c.ins[f.x]}, ${c.ins[f.gate]}, ${c.ins[f.up]}, ${c.out}, ${M}, ${N}, ${K});`;
};
