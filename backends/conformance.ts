/**
 * The conformance suite every backend runs: small graphs covering every core op and every fused
 * pattern at odd sizes (1, 3, 50, 783 where cheap), and `checkBackend`, which runs a backend and
 * the reference interpreter on the same seeded random inputs and weights and reports the largest
 * relative error.
 *
 * Two ways to compare:
 *  - end to end (default): the backend's outputs against the interpreter's (float64) outputs,
 *    rounded to f32. Fine for graphs whose values stay well-conditioned: a backend that stores
 *    intermediates in f32 differs from float64 by roundings that grow through the graph.
 *  - per node (`perNode`): each node's value from the backend (Executable.runDebug) against the
 *    interpreter run on *that node alone*, fed the backend's own operand values. This measures
 *    each kernel's own error, so it stays meaningful on random graphs where a long chain of f32
 *    roundings, overflow past f32's range or cancellation makes end-to-end comparison
 *    meaningless, and it names the first node that differs (what `kiln fuzz` reports).
 * When the interpreter rejects a run (an index out of range, a slice past its axis), the backend
 * must reject it too, with the same error code.
 */
import { GraphBuilder } from '../graph/builder.js';
import { type Dim, dimAdd, dimScale, dimSymbols, evalDim, sym } from '../graph/dim.js';
import type { DType } from '../graph/dtype.js';
import { KilnError } from '../graph/errors.js';
import type { Graph, Node } from '../graph/graph.js';
import { interpret } from '../graph/interpret.js';
import { type Attrs, BINARY_OPS, type OpKind, REDUCE_OPS, UNARY_OPS } from '../graph/ops.js';
import { type HostTensor, maxRelError } from '../graph/tensor.js';
import { mulberry32 as rng } from '../src/runtime/rng.js';
import type { Backend, CompileOptions, HostArray } from './backend.js';

// ---------------------------------------------------------------------------------------------
// the cases

export interface ConformanceCase {
  readonly name: string;
  readonly graph: Graph;
  /** Symbol values to run with (graphs with symbolic dims). */
  readonly symbols?: Readonly<Record<string, number>>;
}

type B = GraphBuilder;
const f32 = (b: B, name: string, shape: Dim[]) => b.add('input', [], { name, dtype: 'f32', shape });
const i32 = (b: B, name: string, shape: Dim[]) => b.add('input', [], { name, dtype: 'i32', shape });
const param = (b: B, name: string, shape: Dim[], dtype: DType = 'f32') => b.add('param', [], { name, dtype, shape });
const seq = sym('seq');
const pos = sym('pos');

function graph(name: string, fn: (b: B) => number | Record<string, number>): Graph {
  const b = new GraphBuilder(name);
  const out = fn(b);
  if (typeof out === 'number') b.output('y', out);
  else for (const [k, v] of Object.entries(out)) b.output(k, v);
  return b.build();
}

/** A fused node over `operands` whose body `fn` builds from the body's inputs arg0, arg1, …. */
function fused(b: B, pattern: string, operands: number[], fn: (body: B, args: number[]) => number): number {
  const body = new GraphBuilder(`${pattern}.body`);
  const args = operands.map((o, i) => {
    const t = b.typeOf(o);
    return body.add('input', [], { name: `arg${i}`, dtype: t.dtype, shape: [...t.shape] });
  });
  body.output('out', fn(body, args));
  return b.add('fused', operands, { pattern, body: body.build() as unknown as Attrs[string] });
}

/** rope(q)·rope(k)ᵀ as the fuse-rope-qk pass writes it: q[S, H, D], k[T, Hkv, D] → [Hkv, g·S, T]. */
function ropeQkBody(body: B, [q, k]: number[], H: number, Hkv: number, S: Dim, rq: Attrs, rk: Attrs): number {
  const D = body.typeOf(q!).shape[2]!;
  const qr = body.add('transpose', [body.add('rope', [q!], rq)], { perm: [1, 0, 2] });
  const qg = H === Hkv ? qr : body.add('reshape', [qr], { shape: [Hkv, dimScale(S, H / Hkv), D] });
  const kr = body.add('transpose', [body.add('rope', [k!], rk)], { perm: [1, 0, 2] });
  return body.add('matmul', [qg, kr], { transB: true });
}

export function conformanceCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const add = (name: string, fn: (b: B) => number | Record<string, number>, symbols?: Record<string, number>) =>
    cases.push(symbols ? { name, graph: graph(name, fn), symbols } : { name, graph: graph(name, fn) });
  const S = { seq: 3, pos: 2 };

  for (const op of UNARY_OPS) add(`${op} [3, 50]`, (b) => b.add(op, [f32(b, 'x', [3, 50])]));
  for (const op of BINARY_OPS) {
    add(`${op} [3, 1, 50] ⊙ [4, 50]`, (b) => b.add(op, [f32(b, 'a', [3, 1, 50]), f32(b, 'b', [4, 50])]));
    add(`${op} i32 [seq, 3] ⊙ [1]`, (b) => b.add(op, [i32(b, 'a', [seq, 3]), i32(b, 'b', [1])]), S);
  }
  add('add [783] + scalar const', (b) => b.add('add', [f32(b, 'x', [783]), b.add('const', [], { dtype: 'f32', shape: [], value: [0.5] })]));
  for (const op of REDUCE_OPS)
    for (const axis of [0, 1, -1]) add(`${op} axis ${axis} [3, 50, 7]`, (b) => b.add(op as OpKind, [f32(b, 'x', [3, 50, 7])], { axis }));

  add('matmul transB [3, 50]·[783, 50]ᵀ', (b) => b.add('matmul', [f32(b, 'a', [3, 50]), param(b, 'w', [783, 50])], { transB: true }));
  add('matmul transB [seq, 50]·[7, 50]ᵀ', (b) => b.add('matmul', [f32(b, 'a', [seq, 50]), param(b, 'w', [7, 50])], { transB: true }), S);
  add('matmul transB [9, 783]·[5, 783]ᵀ', (b) => b.add('matmul', [f32(b, 'a', [9, 783]), param(b, 'w', [5, 783])], { transB: true }));
  add('matmul [1, 50]·[50, 783]', (b) => b.add('matmul', [f32(b, 'a', [1, 50]), f32(b, 'b', [50, 783])], { transB: false }));
  add('matmul [5, 50]·[50, 7]', (b) => b.add('matmul', [f32(b, 'a', [5, 50]), f32(b, 'b', [50, 7])], { transB: false }));
  add('matmul batch-broadcast [2, 1, 5, 3]·[3, 3, 6]', (b) => b.add('matmul', [f32(b, 'a', [2, 1, 5, 3]), f32(b, 'b', [3, 3, 6])], { transB: false }));
  add('matmul batched transB [2, seq, 4]·[2, pos + seq, 4]ᵀ', (b) => b.add('matmul', [f32(b, 'a', [2, seq, 4]), f32(b, 'b', [2, dimAdd(pos, seq), 4])], { transB: true }), S);

  add('reshape [seq, 6] → [2, 3*seq]', (b) => b.add('reshape', [f32(b, 'x', [seq, 6])], { shape: [2, dimScale(seq, 3)] }), S);
  add('transpose [3, 50, 7] perm [2, 0, 1]', (b) => b.add('transpose', [f32(b, 'x', [3, 50, 7])], { perm: [2, 0, 1] }));
  add('transpose [seq, 37] perm [1, 0]', (b) => b.add('transpose', [f32(b, 'x', [seq, 37])], { perm: [1, 0] }), { seq: 19 });
  add('transpose [2, 19, 33] perm [0, 2, 1]', (b) => b.add('transpose', [f32(b, 'x', [2, 19, 33])], { perm: [0, 2, 1] }));
  add('transpose i32 [17, 5] perm [1, 0]', (b) => b.add('transpose', [i32(b, 'x', [17, 5])], { perm: [1, 0] }));
  add('slice axis 1 [3, 50] [pos, pos + seq)', (b) => b.add('slice', [f32(b, 'x', [3, 50])], { axis: 1, start: pos, end: dimAdd(pos, seq) }), S);
  add('slice axis 0 [783, 3] [1, 50)', (b) => b.add('slice', [f32(b, 'x', [783, 3])], { axis: 0, start: 1, end: 50 }));
  add('update_slice axis 0 at pos', (b) => b.add('update_slice', [f32(b, 'base', [7, 2, 3]), f32(b, 'u', [seq, 2, 3])], { axis: 0, start: pos }), S);
  add('update_slice axis -1', (b) => b.add('update_slice', [f32(b, 'base', [3, 50]), f32(b, 'u', [3, 7])], { axis: -1, start: 40 }));
  add('concat axis 1 (3 operands)', (b) => b.add('concat', [f32(b, 'a', [3, 1]), f32(b, 'b', [3, 50]), f32(b, 'c', [3, seq])], { axis: 1 }), S);
  add('broadcast [3, 1] → [2, 3, 50]', (b) => b.add('broadcast', [f32(b, 'x', [3, 1])], { shape: [2, 3, 50] }));
  add('gather [783, 3] by i32[seq]', (b) => b.add('gather', [param(b, 'table', [783, 3]), i32(b, 'ids', [seq])]), S);
  add('gather i32 table [50] by i32[2, 3]', (b) => b.add('gather', [param(b, 'table', [50], 'i32'), i32(b, 'ids', [2, 3])]));
  add('const [2, 3] values, fill', (b) => ({
    a: b.add('add', [f32(b, 'x', [2, 3]), b.add('const', [], { dtype: 'f32', shape: [2, 3], value: [1, -2, 0.5, NaN, Infinity, -0] })]),
    b: b.add('const', [], { dtype: 'i32', shape: [3], value: [7] }),
  }));
  add('iota f32 axis 1 from pos', (b) => b.add('iota', [], { dtype: 'f32', shape: [3, seq], axis: 1, start: pos }), S);
  add('iota i32 axis 0', (b) => b.add('iota', [], { dtype: 'i32', shape: [50, 3], axis: 0, start: 0 }));

  add('softmax axis -1 [3, 50]', (b) => b.add('softmax', [f32(b, 'x', [3, 50])], { axis: -1 }));
  add('softmax axis 0 [7, 3]', (b) => b.add('softmax', [f32(b, 'x', [7, 3])], { axis: 0 }));
  add('rmsnorm [seq, 783]', (b) => b.add('rmsnorm', [f32(b, 'x', [seq, 783]), param(b, 'w', [783])], { eps: 1e-5 }), S);
  for (const layout of ['interleaved', 'half'])
    add(`rope ${layout} [seq, 3, 8] at pos`, (b) => b.add('rope', [f32(b, 'x', [seq, 3, 8])], { base: 10000, layout, offset: pos }), S);
  add('causal_mask [2, seq, pos + seq] offset pos', (b) => b.add('causal_mask', [f32(b, 'x', [2, seq, dimAdd(pos, seq)])], { offset: pos }), S);

  // what a backward pass makes of a LLaMA: weight gradients as transpose + matmul (dW = xᵀ·g for
  // [in, out] weights, gᵀ·x for [out, in] ones), dx = g·W against a param without transB, attention's
  // dK = dSᵀ·Q batched, reductions over the sequence axis (bias-like sums, [seq, vocab]),
  // broadcasts back, and the gradients of slice and concat (concat, update_slice into zeros).
  // Outputs are kept to a few thousand where K is small: a sum of a few products lands within
  // 1e-4 of 0 now and then, and there f32 rounding (~1e-7) is over the per-node tolerance.
  add('backward: matmul transpose [seq, 7]ᵀ·[seq, 783]', (b) => b.add('matmul', [b.add('transpose', [f32(b, 'x', [seq, 7])], { perm: [1, 0] }), f32(b, 'g', [seq, 783])], { transB: false }), { seq: 9 });
  add('backward: matmul transpose [seq, 7]ᵀ·[seq, 50]', (b) => b.add('matmul', [b.add('transpose', [f32(b, 'g', [seq, 7])], { perm: [1, 0] }), f32(b, 'x', [seq, 50])], { transB: false }), { seq: 5 });
  // (g at a gradient's scale, 1/√783: an f32 sum of 783 products of O(1) values is off by ~1e-5)
  add('backward: matmul [seq, 783]·W[783, 50] (dx of a transB weight)', (b) => {
    const g = b.add('mul', [f32(b, 'g', [seq, 783]), b.add('const', [], { dtype: 'f32', shape: [], value: [1 / Math.sqrt(783)] })]);
    return b.add('matmul', [g, param(b, 'w', [783, 50])], { transB: false });
  }, S);
  add('backward: matmul transB [seq, 50]·[783, 50]ᵀ, b not a param', (b) => b.add('matmul', [f32(b, 'a', [seq, 50]), f32(b, 'b', [783, 50])], { transB: true }), S);
  add('backward: matmul batched transpose [2, seq, 5]ᵀ·[2, seq, 4]', (b) =>
    b.add('matmul', [b.add('transpose', [f32(b, 's', [2, seq, 5])], { perm: [0, 2, 1] }), f32(b, 'q', [2, seq, 4])], { transB: false }), { seq: 6 });
  for (const op of ['sum', 'mean'] as const) {
    add(`backward: ${op} axis 0 [seq, 783]`, (b) => b.add(op, [f32(b, 'g', [seq, 783])], { axis: 0 }), { seq: 7 });
    add(`backward: ${op} axis 0 [seq, 1003]`, (b) => b.add(op, [f32(b, 'g', [seq, 1003])], { axis: 0 }), { seq: 5 });
  }
  add('backward: sum axis 0 [9, 4, 50]', (b) => b.add('sum', [f32(b, 'g', [9, 4, 50])], { axis: 0 }));
  add('backward: broadcast [1, 783] → [seq, 783]', (b) => b.add('broadcast', [f32(b, 'x', [1, 783])], { shape: [seq, 783] }), S);
  add('backward: broadcast [seq, 1] → [seq, 50]', (b) => b.add('broadcast', [f32(b, 'x', [seq, 1])], { shape: [seq, 50] }), S);
  add('backward: broadcast [] → [3, 50]', (b) => b.add('broadcast', [f32(b, 'x', [])], { shape: [3, 50] }));
  add('backward: concat axis 0 [seq, 50] ++ [3, 50]', (b) => b.add('concat', [f32(b, 'a', [seq, 50]), f32(b, 'b', [3, 50])], { axis: 0 }), S);
  add('backward: concat axis -1 [seq, 2, 4] ++ [seq, 2, 4]', (b) => b.add('concat', [f32(b, 'a', [seq, 2, 4]), f32(b, 'b', [seq, 2, 4])], { axis: -1 }), S);
  add('backward: slice axis -1 [seq, 783] [7, 50)', (b) => b.add('slice', [f32(b, 'x', [seq, 783])], { axis: -1, start: 7, end: 50 }), S);
  add('backward: slice axis 1 [2, seq, 8] [0, 4)', (b) => b.add('slice', [f32(b, 'x', [2, seq, 8])], { axis: 1, start: 0, end: 4 }), { seq: 5 });
  add('backward: update_slice axis 1 into a computed value that is read again', (b) => {
    const base = b.add('mul', [f32(b, 'x', [seq, 50]), b.add('const', [], { dtype: 'f32', shape: [], value: [2] })]);
    const upd = b.add('update_slice', [base, f32(b, 'u', [seq, 7])], { axis: 1, start: 3 });
    return { y: b.add('add', [upd, base]), z: upd };
  }, S);
  add('backward: update_slice axis 0 into zeros at 2', (b) => {
    const zeros = b.add('broadcast', [b.add('const', [], { dtype: 'f32', shape: [], value: [0] })], { shape: [7, 50] });
    return b.add('update_slice', [zeros, f32(b, 'g', [seq, 50])], { axis: 0, start: 2 });
  }, S);
  add('backward: update_slice axis 0 into an input, past its end (rejected)', (b) => b.add('update_slice', [f32(b, 'x', [4, 3]), f32(b, 'u', [seq, 3])], { axis: 0, start: pos }), { seq: 3, pos: 2 });

  // training ops
  add('one_hot i32[seq, 3] depth 7 (indices in [−1, 7]: some rows zero)', (b) => b.add('one_hot', [i32(b, 'ids', [seq, 3])], { depth: 7 }), { seq: 4 });
  add('one_hot i32[50] depth 783', (b) => b.add('one_hot', [i32(b, 'ids', [50])], { depth: 783 }));
  add('one_hot of consts −1, 0, 6, 7, 3, depth seq', (b) =>
    b.add('one_hot', [b.add('const', [], { dtype: 'i32', shape: [5], value: [-1, 0, 6, 7, 3] })], { depth: seq }), { seq: 7 });
  add('scatter_add i32[seq] × [seq, 50] into 4 rows (repeated indices)', (b) => b.add('scatter_add', [i32(b, 'ids', [seq]), f32(b, 'g', [seq, 50])], { rows: 4 }), { seq: 9 });
  add('scatter_add i32[2, 5] × [2, 5, 3, 4] into 3 rows', (b) => b.add('scatter_add', [i32(b, 'ids', [2, 5]), f32(b, 'g', [2, 5, 3, 4])], { rows: 3 }));
  add('scatter_add i32[50] × [50] into 783 rows (most rows zero)', (b) => b.add('scatter_add', [i32(b, 'ids', [50]), f32(b, 'g', [50])], { rows: 783 }));
  add('scatter_add i32[seq] × [seq, 37] into seq + 1 rows', (b) => b.add('scatter_add', [i32(b, 'ids', [seq]), f32(b, 'g', [seq, 37])], { rows: dimAdd(seq, 1) }), { seq: 6 });
  add('scatter_add i32[seq, pos] × [seq, pos, 5] into 6 rows (two symbols)', (b) => b.add('scatter_add', [i32(b, 'ids', [seq, pos]), f32(b, 'g', [seq, pos, 5])], { rows: 6 }), { seq: 3, pos: 4 });
  add('scatter_add: the gradient of gather (same ids)', (b) => {
    const ids = i32(b, 'ids', [seq]);
    const rows = b.add('gather', [param(b, 'table', [11, 6]), ids]);
    return b.add('scatter_add', [ids, b.add('mul', [rows, f32(b, 'g', [seq, 6])])], { rows: 11 });
  }, { seq: 8 });
  add('scatter_add index 5 outside [0, 4) (rejected)', (b) =>
    b.add('scatter_add', [b.add('const', [], { dtype: 'i32', shape: [3], value: [0, 5, 1] }), f32(b, 'g', [3, 2])], { rows: 4 }));
  add('scatter_add index −1 (rejected)', (b) =>
    b.add('scatter_add', [b.add('const', [], { dtype: 'i32', shape: [2], value: [1, -1] }), f32(b, 'g', [2, 3])], { rows: 4 }));
  add('cross_entropy [seq, 783] by i32[seq]', (b) => b.add('cross_entropy', [f32(b, 'logits', [seq, 783]), i32(b, 't', [seq])]), { seq: 5 });
  add('cross_entropy [2, 3, 50] by i32[2, 3]', (b) => b.add('cross_entropy', [f32(b, 'logits', [2, 3, 50]), i32(b, 't', [2, 3])]));
  add('cross_entropy [7] by i32[] (one row)', (b) => b.add('cross_entropy', [f32(b, 'logits', [7]), i32(b, 't', [])]));
  add('cross_entropy [5, 1] (one class)', (b) => b.add('cross_entropy', [f32(b, 'logits', [5, 1]), i32(b, 't', [5])]));
  add('cross_entropy of logits ×300 (exps far below f32 range)', (b) => {
    const x = b.add('mul', [f32(b, 'logits', [4, 131]), b.add('const', [], { dtype: 'f32', shape: [], value: [300] })]);
    return b.add('cross_entropy', [x, i32(b, 't', [4])]);
  });
  add('cross_entropy with −∞ logits (causal_mask; one target masked: +∞)', (b) => {
    const x = b.add('causal_mask', [f32(b, 'logits', [3, 6, 13])], { offset: 7 });
    return b.add('cross_entropy', [x, b.add('const', [], { dtype: 'i32', shape: [3, 6], value: [12, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9] })]);
  });
  add('cross_entropy target 50 outside [0, 50) (rejected)', (b) =>
    b.add('cross_entropy', [f32(b, 'logits', [2, 50]), b.add('const', [], { dtype: 'i32', shape: [2], value: [3, 50] })]));
  const key = (b: B) => i32(b, 'key', [2]); // [seed, step]
  add('dropout_mask [seq, 50] p 0.25 stream 3', (b) => b.add('dropout_mask', [key(b)], { shape: [seq, 50], p: 0.25, stream: 3 }), S);
  add('dropout_mask [783, 3] p 0.1, const key, stream 2^31 − 1', (b) =>
    b.add('dropout_mask', [b.add('const', [], { dtype: 'i32', shape: [2], value: [123456789, -7] })], { shape: [783, 3], p: 0.1, stream: 0x7fffffff }));
  for (const p of [0, 0.5, 0.9, 0.999])
    add(`dropout_mask [1003] p ${p} stream 5`, (b) => b.add('dropout_mask', [key(b)], { shape: [1003], p, stream: 5 }));
  add('dropout_mask [] (one element)', (b) => b.add('dropout_mask', [key(b)], { shape: [], p: 0.3, stream: 1 }));
  add('x · dropout_mask [seq, 2, 7]', (b) => b.add('mul', [f32(b, 'x', [seq, 2, 7]), b.add('dropout_mask', [key(b)], { shape: [seq, 2, 7], p: 0.4, stream: 9 })]), S);

  // fused patterns
  for (const [H, Hkv] of [
    [4, 2],
    [3, 3],
    [3, 1],
  ] as const) {
    for (const layout of ['interleaved', 'half'])
      add(
        `fused rope_qk H=${H} Hkv=${Hkv} ${layout}`,
        (b) =>
          fused(b, 'rope_qk', [f32(b, 'q', [seq, H, 8]), f32(b, 'k', [dimAdd(pos, seq), Hkv, 8])], (body, args) =>
            ropeQkBody(body, args, H, Hkv, seq, { base: 10000, layout, offset: pos }, { base: 10000, layout, offset: 0 }),
          ),
        { seq: 5, pos: 2 },
      );
  }
  add('fused rope_qk, a body of another form (runs as its decomposition)', (b) =>
    fused(b, 'rope_qk', [f32(b, 'q', [2, 3, 4]), f32(b, 'k', [2, 5, 4])], (body, [q, k]) => body.add('matmul', [q!, k!], { transB: true })),
  );
  for (const [M, F, D] of [
    [5, 9, 50],
    [1, 7, 3],
  ] as const)
    add(`fused swiglu x[${M}, ${D}] W[${F}, ${D}]`, (b) =>
      fused(b, 'swiglu', [f32(b, 'x', [M, D]), param(b, 'w1', [F, D]), param(b, 'w3', [F, D])], (body, [x, w1, w3]) => {
        const gate = body.add('silu', [body.add('matmul', [x!, w1!], { transB: true })]);
        return body.add('mul', [gate, body.add('matmul', [x!, w3!], { transB: true })]);
      }),
    );
  add('fused swiglu [2, seq, 50], up·silu order', (b) =>
    fused(b, 'swiglu', [f32(b, 'x', [2, seq, 50]), param(b, 'w1', [6, 50]), param(b, 'w3', [6, 50])], (body, [x, w1, w3]) => {
      const up = body.add('matmul', [x!, w3!], { transB: true });
      return body.add('mul', [up, body.add('silu', [body.add('matmul', [x!, w1!], { transB: true })])]);
    }),
  S);
  for (const scaled of [true, false])
    add(
      `fused causal_softmax [2, seq, pos + seq] offset pos${scaled ? ', scaled' : ''}`,
      (b) => {
        const x = f32(b, 'x', [2, seq, dimAdd(pos, seq)]);
        const ops = scaled ? [x, b.add('const', [], { dtype: 'f32', shape: [], value: [0.125] })] : [x];
        return fused(b, 'causal_softmax', ops, (body, [xa, sa]) => {
          const y = sa === undefined ? xa! : body.add('mul', [sa, xa!]);
          return body.add('softmax', [body.add('causal_mask', [y], { offset: pos })], { axis: -1 });
        });
      },
      { seq: 5, pos: 2 },
    );
  add('fused causal_softmax [3, 4, 7] offset −1 (a row with nothing kept is NaN)', (b) =>
    fused(b, 'causal_softmax', [f32(b, 'x', [3, 4, 7])], (body, [x]) => body.add('softmax', [body.add('causal_mask', [x!], { offset: -1 })], { axis: 2 })),
  );
  add('fused causal_softmax, a body of another form (runs as its decomposition)', (b) =>
    fused(b, 'causal_softmax', [f32(b, 'x', [4, 4])], (body, [x]) => body.add('softmax', [body.add('causal_mask', [x!], { offset: 0 })], { axis: 0 })),
  );
  add('fused elementwise with broadcasting and consts', (b) =>
    fused(b, 'elementwise', [f32(b, 'a', [3, 50]), f32(b, 'b', [50]), f32(b, 'c', [3, 1])], (body, [a, bb, c]) => {
      const t = body.add('mul', [a!, bb!]);
      const k = body.add('const', [], { dtype: 'f32', shape: [3, 1], value: [0.5, -1, 2] });
      const u = body.add('add', [body.add('tanh', [t]), body.add('mul', [c!, k])]);
      return body.add('sub', [body.add('exp', [body.add('neg', [u])]), body.add('const', [], { dtype: 'f32', shape: [], value: [0.25] })]);
    }),
  );
  add('fused elementwise i32', (b) =>
    fused(b, 'elementwise', [i32(b, 'a', [seq, 3]), i32(b, 'b', [3])], (body, [a, bb]) =>
      body.add('div', [body.add('mul', [a!, bb!]), body.add('const', [], { dtype: 'i32', shape: [], value: [2] })]),
    ),
  S);

  // a KV-cache step: update_slice into state, read back [0, pos + seq)
  add(
    'state update_slice at pos, read back',
    (b) => {
      const cache = b.add('state', [], { name: 'cache', dtype: 'f32', shape: [7, 2, 3] });
      const upd = b.add('update_slice', [cache, f32(b, 'x', [seq, 2, 3])], { axis: 0, start: pos });
      const back = b.add('slice', [upd], { axis: 0, start: 0, end: dimAdd(pos, seq) });
      return { y: b.add('sum', [back], { axis: 0 }), 'state:cache': upd };
    },
    S,
  );
  return cases;
}

// ---------------------------------------------------------------------------------------------
// checking a backend

export interface CheckOptions {
  readonly seed: number;
  /** Symbol values (default: seq 3, pos 2, or drawn from the seed; within the memory plan's bounds). */
  readonly symbols?: Readonly<Record<string, number>>;
  /**
   * `maxRelError`'s floor: below it, errors count as absolute. Default 1e-2 end to end (the
   * generated values are O(1); results that cancel to near zero carry absolute errors at the
   * scale of their terms, ~1e-7 per f32 rounding), 1e-6 per node (one rounding, nothing to grow).
   */
  readonly floor?: number;
  readonly compile?: CompileOptions;
  /** Compare node by node (see the file comment). Needs a backend with runDebug. */
  readonly perNode?: boolean;
  /** Per node: name the first node whose error is above this (CheckResult.firstBad). */
  readonly tolerance?: number;
}

export interface CheckResult {
  readonly seed: number;
  /** The largest relative error (0 when both rejected the run with the same code). */
  readonly maxRelError: number;
  /** Where it was: an output name, or `%12 matmul` per node. */
  readonly worst: string;
  /** Per node, with a tolerance: the first node in schedule order whose error is above it. */
  readonly firstBad?: string;
  /** A one-line account with the seed, for test failure messages. */
  readonly summary: string;
}

/** Every dim symbol of a graph: in types, and in attributes (a slice at `pos`), bodies included. */
function symbolsOf(g: { readonly nodes: readonly Node[] }, s = new Set<string>()): string[] {
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    if ('terms' in v && 'offset' in v) dimSymbols(v as Dim).forEach((x) => s.add(x));
    else if (Array.isArray(v)) v.forEach(walk);
    else if ('nodes' in v) symbolsOf(v as Graph, s);
  };
  for (const n of g.nodes) {
    n.type.shape.forEach(walk);
    Object.values(n.attrs).forEach(walk);
  }
  return [...s].sort();
}

/** Seeded symbol values: seq in 1…4, pos in 0…3, others 1…4, kept within the plan's bounds (pos + seq too). */
export function pickSymbols(g: Graph, seed: number, given: Readonly<Record<string, number>> = {}): Record<string, number> {
  const r = rng(seed ^ 0x5eed);
  const bounds = (g.meta['memoryPlan'] as { bounds?: Record<string, number> } | undefined)?.bounds ?? {};
  const env: Record<string, number> = {};
  for (const s of symbolsOf(g)) env[s] = given[s] ?? (s === 'pos' ? Math.floor(r() * 4) : 1 + Math.floor(r() * 4));
  const max = Math.min(...Object.values(bounds));
  if (Number.isFinite(max) && (env['seq'] ?? 0) + (env['pos'] ?? 0) > max) {
    if (env['seq'] !== undefined && given['seq'] === undefined) env['seq'] = Math.max(1, max - (env['pos'] ?? 0));
    if (env['pos'] !== undefined && given['pos'] === undefined) env['pos'] = Math.max(0, max - (env['seq'] ?? 0));
  }
  return env;
}

/**
 * Seeded inputs, params and state: f32 uniform in [−1, 1) — params of rank ≥ 2 scaled by
 * 1/√(last dim), as trained weight matrices roughly are, so that values stay O(1) through a deep
 * graph instead of growing layer by layer; i32 indices of a gather, scatter_add or cross_entropy
 * in range; one_hot's indices in [−1, depth] (a row of zeros now and then); dropout keys of any 32
 * bits; other i32 in −3…3.
 */
export function randomBindings(g: Graph, seed: number, env: Readonly<Record<string, number>>): Record<'input' | 'param' | 'state', Record<string, HostArray>> {
  const r = rng(seed);
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  // indices a kernel reads as rows: [0, V) (the smallest V where several read one array)
  const range = new Map<number, number>();
  const within = (id: number, V: number) => range.set(id, Math.min(V, range.get(id) ?? V));
  for (const n of g.nodes) {
    if (n.op === 'gather') within(n.inputs[1]!, evalDim(byId.get(n.inputs[0]!)!.type.shape[0]!, env));
    else if (n.op === 'scatter_add') within(n.inputs[0]!, evalDim(n.attrs['rows'] as Dim, env));
    else if (n.op === 'cross_entropy') within(n.inputs[1]!, evalDim(byId.get(n.inputs[0]!)!.type.shape.at(-1)!, env));
  }
  // one_hot's indices in [−1, depth]: rows of zeros too
  const oneHot = new Map<number, number>();
  for (const n of g.nodes) if (n.op === 'one_hot' && !range.has(n.inputs[0]!)) oneHot.set(n.inputs[0]!, evalDim(n.attrs['depth'] as Dim, env));
  // dropout_mask's key: any 32 bits
  const keys = new Set(g.nodes.filter((n) => n.op === 'dropout_mask').map((n) => n.inputs[0]!));
  const out = { input: {}, param: {}, state: {} } as Record<'input' | 'param' | 'state', Record<string, HostArray>>;
  const scale = (n: Node) => (n.op === 'param' && n.type.shape.length >= 2 ? 1 / Math.sqrt(Math.max(1, evalDim(n.type.shape.at(-1)!, env))) : 1);
  for (const n of g.nodes) {
    if (n.op !== 'input' && n.op !== 'param' && n.op !== 'state') continue;
    const size = n.type.shape.reduce<number>((a, d) => a * evalDim(d, env), 1);
    const V = range.get(n.id);
    out[n.op][String(n.attrs['name'])] =
      n.type.dtype === 'i32'
        ? Int32Array.from({ length: size }, () => {
            if (V !== undefined) return Math.floor(r() * V);
            if (oneHot.has(n.id)) return Math.floor(r() * (oneHot.get(n.id)! + 2)) - 1;
            return keys.has(n.id) ? Math.floor(r() * 2 ** 32) | 0 : Math.floor(r() * 7) - 3;
          })
        : Float32Array.from({ length: size }, () => (2 * r() - 1) * scale(n));
  }
  return out;
}

const host = (dtype: DType, shape: number[], a: ArrayLike<number>): HostTensor => ({ dtype, shape, data: Float64Array.from(a) });
const toF32 = (t: HostTensor): HostTensor => (t.dtype === 'f32' ? { ...t, data: t.data.map(Math.fround) } : t);
const shapeIn = (n: Node, env: Readonly<Record<string, number>>) => n.type.shape.map((d) => evalDim(d, env));

function hostAll(g: Graph, arrays: Record<string, HostArray>, op: 'input' | 'param' | 'state', env: Record<string, number>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const n of g.nodes) if (n.op === op) out[String(n.attrs['name'])] = host(n.type.dtype, shapeIn(n, env), arrays[String(n.attrs['name'])]!);
  return out;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };
async function attempt<T>(fn: () => T | Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}
const codeOf = (e: unknown) => (e instanceof KilnError ? e.code : e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * Run `backend` and the interpreter on `graph` with inputs, weights and state drawn from `seed`;
 * returns the largest relative error (see the file comment for the two ways to compare).
 */
export async function checkBackend(backend: Backend, graph: Graph, opts: CheckOptions): Promise<CheckResult> {
  const { seed } = opts;
  const env = pickSymbols(graph, seed, { ...opts.compile?.specialize, ...opts.symbols });
  const data = randomBindings(graph, seed, env);
  const label = `${backend.name} on graph ${graph.name}, seed ${seed}, symbols ${JSON.stringify(env)}`;
  const floor = opts.floor ?? (opts.perNode ? 1e-6 : 1e-2);
  const bindings = { inputs: hostAll(graph, data.input, 'input', env), params: hostAll(graph, data.param, 'param', env), state: hostAll(graph, data.state, 'state', env), symbols: env };
  const ref = await attempt(() => interpret(graph, bindings));
  const compile = { ...opts.compile, ...(opts.perNode ? { debugValues: true } : {}) };
  const ran = await attempt(async () => {
    const exe = await backend.compile(graph, compile);
    try {
      exe.setWeights(data.param);
      const args = { inputs: data.input, symbols: env, state: data.state };
      if (!opts.perNode) return { outputs: exe.run(args), values: undefined };
      if (!exe.runDebug) throw new Error(`${backend.name}: no runDebug with debugValues`);
      return exe.runDebug(args);
    } finally {
      // worker threads and memory (wasm) end with the check, not with the process
      exe.dispose?.();
    }
  });
  let firstBad: string | undefined;
  const result = (maxRel: number, worst: string, extra = ''): CheckResult => ({
    seed,
    maxRelError: maxRel,
    worst,
    ...(firstBad ? { firstBad } : {}),
    summary: `${label}: max relative error ${maxRel.toExponential(2)} at ${worst}${extra}${firstBad ? `; first node over ${opts.tolerance}: ${firstBad}` : ''}`,
  });
  if (!ref.ok) {
    // A KilnError must be matched by the same code; a graph the interpreter cannot run at all
    // (a shape that comes out negative) must be refused, by any error.
    const want = codeOf(ref.error);
    const got = ran.ok ? 'no error' : codeOf(ran.error);
    const agree = ref.error instanceof KilnError ? want === got : !ran.ok;
    return agree ? result(0, `both rejected the run (${want})`) : result(Infinity, 'the error', `: the interpreter threw ${want}, ${backend.name} gave ${got}`);
  }
  if (!ran.ok) return result(Infinity, 'the run', `: ${backend.name} threw ${codeOf(ran.error)}${ran.error instanceof Error ? ` (${ran.error.message})` : ''}`);

  let worst = 0;
  let where = 'nowhere';
  const note = (e: number, w: string) => {
    if (e > worst) [worst, where] = [e, w];
  };
  for (const o of graph.outputs) {
    const want = ref.value[o.name]!;
    const got = ran.value.outputs[o.name];
    if (!got) return result(Infinity, `output '${o.name}'`, ': missing');
    if (got.length !== want.data.length) return result(Infinity, `output '${o.name}'`, `: ${got.length} values, want ${want.data.length}`);
    if (!opts.perNode) note(maxRelError(host(want.dtype, want.shape, got), toF32(want), floor), `output '${o.name}'`);
  }
  if (opts.perNode) {
    const values = ran.value.values!;
    for (const n of graph.nodes) {
      if (n.op === 'input' || n.op === 'param' || n.op === 'state') continue;
      const got = values.get(n.id);
      if (!got) return result(Infinity, `%${n.id} ${n.op}`, ': no value recorded');
      const want = nodeAlone(graph, n, values, env);
      const e = maxRelError(host(n.type.dtype, shapeIn(n, env), got), toF32(want), floor);
      const w = `%${n.id} ${n.op}${n.scope ? ` (${n.scope})` : ''}`;
      note(e, w);
      if (opts.tolerance !== undefined && e > opts.tolerance) firstBad ??= w;
    }
  }
  return result(worst, where);
}

/** The interpreter's value of node `n` alone, fed the backend's values of its operands. */
function nodeAlone(g: Graph, n: Node, values: Map<number, HostArray>, env: Record<string, number>): HostTensor {
  const byId = new Map(g.nodes.map((m) => [m.id, m]));
  const b = new GraphBuilder('node');
  const inputs: Record<string, HostTensor> = {};
  const ids = n.inputs.map((id, i) => {
    const m = byId.get(id)!;
    inputs[`x${i}`] = host(m.type.dtype, shapeIn(m, env), values.get(id)!);
    return b.add('input', [], { name: `x${i}`, dtype: m.type.dtype, shape: [...m.type.shape] });
  });
  b.output('y', b.add(n.op, ids, n.attrs));
  return interpret(b.build(), { inputs, symbols: env })['y']!;
}
