/**
 * matmul, five module functions (f32 accumulation throughout; the sum order differs from the
 * interpreter's, so results differ by f32 roundings):
 *  - mm_pk: b a param stored [N, K] (transB, LLaMA's [out, in] weights), repacked at setWeights
 *    into 16-column panels [⌈N/16⌉][K][16] — one sequential stream per panel. A 2×16 register
 *    tile (8 f32x4 accumulators) for pairs of rows; one row alone (decode's matvec) goes to mv_pk,
 *    which reads several panels side by side (MV_STREAMS); an odd last row runs a 1×16 tile.
 *    Panels [p0, p1) only, so that threads can split the columns.
 *  - mm_nn: b [K, N] row-major (attention's probabilities · V): 4×8 outer-product tiles; given
 *    a causal softmax's output as a (CS rows, offset OFF), each row group's sum stops at its zeros.
 *  - mm_nt: b [N, K] not packed (attention scores): 2×4 dot-product tiles, four k at a time; given
 *    a causal block (CS rows, offset OFF) it leaves the columns a causal softmax never reads.
 *  - mm_kvt, mm_kvn: scores and p·v for up to KV_ROWS_MAX rows per head (a decode step) over the
 *    KV cache read in place, walking the cache row by row.
 * mm_nn and mm_nt take b's row stride, so that b may be the cache read in place through a head
 * swap (layout.ts). Batch dims that broadcast walk a loop nest; a 2-D b folds a's batch into M.
 */
import type { Dim } from '../../../graph/dim.js';
import { dimEq, isStatic } from '../../../graph/dim.js';
import { Fn, type Expr } from '../fn.js';
import { broadcastStrides, nest } from './elementwise.js';
import type { CausalRows } from '../causal-rows.js';
import type { WasmCtx, WasmKernel } from './kernel.js';

/** Store 16 lanes (4 vectors) at out + (row·N + n)·4, lane by lane past column N. */
function store16(c: WasmCtx, f: Fn, out: number, row: Expr, n: number, N: number, acc: readonly number[]): Expr {
  const { m } = c;
  const base = () => m.i32.add(f.get(out), m.i32.shl(m.i32.add(m.i32.mul(row, f.get(N)), f.get(n)), m.i32.const(2)));
  const rowB = f.local(c.b.i32);
  const full = acc.map((a, i) => m.v128.store(16 * i, 4, f.get(rowB), f.get(a)));
  const lanes = acc.flatMap((a, i) =>
    [0, 1, 2, 3].map((l) => m.if(m.i32.lt_s(m.i32.add(f.get(n), m.i32.const(4 * i + l)), f.get(N)), m.f32.store(16 * i + 4 * l, 4, f.get(rowB), m.f32x4.extract_lane(f.get(a), l)))),
  );
  return m.block(null, [f.set(rowB, base()), m.if(m.i32.le_s(m.i32.add(f.get(n), m.i32.const(16)), f.get(N)), m.block(null, full), m.block(null, lanes))]);
}

/**
 * How many columns row r of a causal block keeps: (r mod CS) + OFF + 1, from the locals CS (rows
 * per block, > 0) and OFF (the mask's offset): mm_nt stops scores there, mm_nn sums.
 */
function causalKeep(c: WasmCtx, f: Fn, CS: number, OFF: number): (r: Expr) => Expr {
  const { m } = c;
  return (r) => m.i32.add(m.i32.rem_u(r, f.get(CS)), m.i32.add(f.get(OFF), m.i32.const(1)));
}

/** mm_nt's and mm_nn's last two arguments: the causal block (rows, offset), or 0, 0 for none. */
export function causalArgs(c: WasmCtx, block: CausalRows | undefined): Expr[] {
  return block ? [c.dim(block.rows), c.dim(block.offset)] : [c.m.i32.const(0), c.m.i32.const(0)];
}

/**
 * The lane sums of the four f32x4 locals `v` as one vector (transpose-and-add): the statements
 * (through the scratch locals t0, t1) and the value, read once after them.
 */
function laneSums4(c: WasmCtx, f: Fn, v: readonly number[], t0: number, t1: number): { pre: Expr[]; value: Expr } {
  const { m } = c;
  const sh = (x: number, y: number, l: number[]) => m.i8x16.shuffle(f.get(x), f.get(y), l.flatMap((i) => [4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]));
  return {
    pre: [
      f.set(t0, m.f32x4.add(sh(v[0]!, v[1]!, [0, 4, 1, 5]), sh(v[0]!, v[1]!, [2, 6, 3, 7]))),
      f.set(t1, m.f32x4.add(sh(v[2]!, v[3]!, [0, 4, 1, 5]), sh(v[2]!, v[3]!, [2, 6, 3, 7]))),
    ],
    value: m.f32x4.add(sh(t0, t1, [0, 1, 4, 5]), sh(t0, t1, [2, 3, 6, 7])),
  };
}

/** Weight streams mv_pk reads at once (472 MB from RAM, one thread, GB/s: 1 stream 24–27, 4 streams 27–35; 8 lost to spills). swiglu_pk's decode path already reads two, gate and up, and measured no better with four. */
export const MV_STREAMS = 4;

/**
 * mv_pk: one row (decode's matvec) over panels [P0, P1) of mm_pk's layout. The panels are cut in
 * MV_STREAMS equal runs walked side by side, so that several weight streams are in flight at once
 * (one sequential stream leaves memory bandwidth unused); the panels left over go one at a time.
 */
function buildMatvecPacked(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 7 }, () => b.i32));
  const [A, BP, OUT, N, K, P0, P1] = [0, 1, 2, 3, 4, 5, 6];
  const I = (v: number) => m.i32.const(v);
  const [i, q, ap, n, k] = [0, 0, 0, 0, 0].map(() => f.local(b.i32)) as number[];
  const s = f.local(b.v128);
  const K4 = () => m.i32.shl(f.get(K), I(2));
  const zero = () => m.v128.const(new Array(16).fill(0));
  /** S panels at once, the t-th at panel first(t): the loop over k, then each 16-column block stored. */
  const streams = (S: number, first: (t: number) => Expr) => {
    const wp = Array.from({ length: S }, () => f.local(b.i32));
    const acc = Array.from({ length: 4 * S }, () => f.local(b.v128));
    const body: Expr[] = [f.set(s, m.v128.load32_splat(0, 4, f.get(ap!)))];
    for (let t = 0; t < S; t++) for (let j = 0; j < 4; j++) body.push(f.set(acc[4 * t + j]!, c.madd(f.get(s), m.v128.load(16 * j, 16, f.get(wp[t]!)), f.get(acc[4 * t + j]!))));
    return [
      ...acc.map((a) => f.set(a, zero())),
      f.set(ap!, f.get(A)),
      ...wp.map((w, t) => f.set(w, m.i32.add(f.get(BP), m.i32.mul(first(t), m.i32.shl(K4(), I(4)))))),
      f.for(k!, I(0), f.at(K), 1, [...body, ...wp.map((w) => f.set(w, m.i32.add(f.get(w), I(64)))), f.set(ap!, m.i32.add(f.get(ap!), I(4)))]),
      ...wp.flatMap((_, t) => [f.set(n!, m.i32.shl(first(t), I(4))), store16(c, f, OUT, I(0), n!, N, acc.slice(4 * t, 4 * t + 4))]),
    ];
  };
  const S = MV_STREAMS;
  f.finish(name, b.none, [
    f.set(q!, m.i32.div_u(m.i32.sub(f.get(P1), f.get(P0)), I(S))),
    f.for(i!, I(0), f.at(q!), 1, streams(S, (t) => m.i32.add(m.i32.add(f.get(P0), f.get(i!)), m.i32.mul(I(t), f.get(q!))))),
    f.for(i!, m.i32.add(f.get(P0), m.i32.mul(I(S), f.get(q!))), f.at(P1), 1, streams(1, () => f.get(i!))),
  ]);
}

export function buildMatmulPacked(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
  const [A, BP, OUT, M, N, K, P0, P1] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [p, row, k, a0, a1, bp, n] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(b.i32)) as number[];
  const acc = Array.from({ length: 8 }, () => f.local(b.v128));
  // Every loaded vector goes through a local: neither binaryen nor V8 merges repeated loads, and
  // loading each weight vector once per k (not once per row) is what makes the tile pay.
  const wl = Array.from({ length: 4 }, () => f.local(b.v128));
  const [s0, s1] = [f.local(b.v128), f.local(b.v128)];
  const zero = () => m.v128.const([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const loadW = (extra = 0) => wl.map((w, i) => f.set(w, m.v128.load(16 * i + extra, 16, f.get(bp!))));
  const splat = (ptr: number, off = 0) => m.v128.load32_splat(off, 4, f.get(ptr));
  const fma = (accs: readonly number[], s: number) => accs.map((a, i) => f.set(a, c.madd(f.get(s), f.get(wl[i]!), f.get(a))));
  const inc = (l: number, by: number | (() => Expr)) => f.set(l, m.i32.add(f.get(l), typeof by === 'number' ? m.i32.const(by) : by()));
  const K4 = () => m.i32.shl(f.get(K), m.i32.const(2));
  const [lo, hi] = [acc.slice(0, 4), acc.slice(4)];
  const pair = [
    ...acc.map((a) => f.set(a, zero())),
    f.set(a0!, m.i32.add(f.get(A), m.i32.mul(f.get(row!), K4()))),
    f.set(a1!, m.i32.add(f.get(a0!), K4())),
    f.set(bp!, m.i32.add(f.get(BP), m.i32.mul(f.get(p!), m.i32.shl(K4(), m.i32.const(4))))),
    f.for(k!, m.i32.const(0), f.at(K), 1, [
      ...loadW(),
      f.set(s0, splat(a0!)),
      f.set(s1, splat(a1!)),
      ...fma(lo, s0),
      ...fma(hi, s1),
      inc(a0!, 4),
      inc(a1!, 4),
      inc(bp!, 64),
    ]),
    store16(c, f, OUT, f.get(row!), n!, N, lo),
    store16(c, f, OUT, m.i32.add(f.get(row!), m.i32.const(1)), n!, N, hi),
  ];
  // one row (decode's matvec)
  const single = [
    ...lo.map((a) => f.set(a, zero())),
    f.set(a0!, m.i32.add(f.get(A), m.i32.mul(f.get(row!), K4()))),
    f.set(bp!, m.i32.add(f.get(BP), m.i32.mul(f.get(p!), m.i32.shl(K4(), m.i32.const(4))))),
    f.for(k!, m.i32.const(0), f.at(K), 1, [...loadW(), f.set(s0, splat(a0!)), ...fma(lo, s0), inc(a0!, 4), inc(bp!, 64)]),
    store16(c, f, OUT, f.get(row!), n!, N, lo),
  ];
  // Every row pair runs over a panel before the next panel: the panel (16·K floats) is read from
  // memory once and then from cache. Blocks of 32 rows (so that a's rows stayed in L2 across the
  // panels) read each panel from memory once per block instead: with weights streaming from RAM,
  // as in a prefill, 128×768×32000 ran 43.5–45.5 GFLOP/s in blocks of 32, 47.0–48.2 unblocked.
  const mv = c.helper('mv_pk', () => buildMatvecPacked(c, 'mv_pk'));
  f.finish(name, b.none, [
    m.if(m.i32.eq(f.get(M), m.i32.const(1)), m.block(null, [m.call(mv, [A, BP, OUT, N, K, P0, P1].map((x) => f.get(x)), b.none), m.return()])),
    f.for(p!, f.get(P0), f.at(P1), 1, [
      f.set(n!, m.i32.shl(f.get(p!), m.i32.const(4))),
      f.set(row!, m.i32.const(0)),
      m.block('rows', [m.loop('pairs', m.block(null, [m.br('rows', m.i32.gt_s(m.i32.add(f.get(row!), m.i32.const(2)), f.get(M))), ...pair, inc(row!, 2), m.br('pairs')]))]),
      m.if(m.i32.lt_s(f.get(row!), f.get(M)), m.block(null, single)),
    ]),
  ]);
}

/** mm_nn_edge: out[r, n] for r in [R0, R1), n in [N0, N1): four columns at a time, a[r, k] splatted, then one at a time. */
function buildNnEdge(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 11 }, () => b.i32));
  const [A, B, OUT, , N, K, LDB, R0, R1, N0, N1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [row, n, k, acc, s] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.v128), f.local(b.f32)];
  const aAt = () => m.i32.add(f.get(A), m.i32.shl(m.i32.add(m.i32.mul(f.get(row), f.get(K)), f.get(k)), m.i32.const(2)));
  const bAt = () => m.i32.add(f.get(B), m.i32.shl(m.i32.add(m.i32.mul(f.get(k), f.get(LDB)), f.get(n)), m.i32.const(2)));
  const oAt = () => m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(f.get(row), f.get(N)), f.get(n)), m.i32.const(2)));
  f.finish(name, b.none, [
    f.for(row, f.get(R0), f.at(R1), 1, [
      f.set(n, f.get(N0)),
      m.block('vec', [
        m.loop('cols', m.block(null, [
          m.br('vec', m.i32.gt_s(m.i32.add(f.get(n), m.i32.const(4)), f.get(N1))),
          f.set(acc, m.v128.const(new Array(16).fill(0))),
          f.for(k, m.i32.const(0), f.at(K), 1, [f.set(acc, c.madd(m.v128.load32_splat(0, 4, aAt()), m.v128.load(0, 4, bAt()), f.get(acc)))]),
          m.v128.store(0, 4, oAt(), f.get(acc)),
          f.set(n, m.i32.add(f.get(n), m.i32.const(4))),
          m.br('cols'),
        ])),
      ]),
      f.for(n, f.get(n), f.at(N1), 1, [
        f.set(s, m.f32.const(0)),
        f.for(k, m.i32.const(0), f.at(K), 1, [f.set(s, m.f32.add(f.get(s), m.f32.mul(m.f32.load(0, 4, aAt()), m.f32.load(0, 4, bAt()))))]),
        m.f32.store(0, 4, oAt(), f.get(s)),
      ]),
    ]),
  ]);
}

/**
 * mm_nn(a, b, out, M, N, K, ldb): b [K, N] with rows ldb floats apart (attention's probabilities
 * · V; ldb > N reads V's rows in place in the cache). 4 rows × 8 columns at a time: per k, four
 * a[r, k] splatted and two vectors of b's row k, 8 f32x4 accumulators. Rows left over (a decode
 * step's one query row) take 1 × 16 tiles; the columns left over take mm_nn_edge.
 */
export function buildMatmulNN(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const edge = c.helper('mm_nn_edge', () => buildNnEdge(c, 'mm_nn_edge'));
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
  const [A, B, OUT, M, N, K, LDB, CS, OFF] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const I = (v: number) => m.i32.const(v);
  const i32 = () => f.local(b.i32);
  const [row, n, k, ap, bp, mT, nT, kE, t] = [i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32()];
  // CS > 0: a is a causal softmax's output, row r zero after column (r mod CS) + OFF: the sums
  // of a group of rows stop at the last column any of them keeps.
  const keep = causalKeep(c, f, CS, OFF);
  const limit = (rows: number) =>
    m.if(
      m.i32.eqz(f.get(CS)),
      f.set(kE, f.get(K)),
      m.block(null, [
        f.set(kE, keep(f.get(row))),
        ...Array.from({ length: rows - 1 }, (_, i) => [f.set(t, keep(m.i32.add(f.get(row), I(i + 1)))), m.if(m.i32.gt_s(f.get(t), f.get(kE)), f.set(kE, f.get(t)))]).flat(),
        m.if(m.i32.gt_s(f.get(kE), f.get(K)), f.set(kE, f.get(K))),
      ]),
    );
  const acc = Array.from({ length: 8 }, () => f.local(b.v128));
  const sv = Array.from({ length: 4 }, () => f.local(b.v128));
  const bv = [f.local(b.v128), f.local(b.v128)];
  const K4 = () => m.i32.shl(f.get(K), I(2));
  const LDB4 = () => m.i32.shl(f.get(LDB), I(2));
  const outAt = (i: number) => m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(m.i32.add(f.get(row), I(i)), f.get(N)), f.get(n)), I(2)));
  const tile = [
    ...acc.map((a) => f.set(a, m.v128.const(new Array(16).fill(0)))),
    f.set(ap, m.i32.add(f.get(A), m.i32.mul(f.get(row), K4()))),
    f.set(bp, m.i32.add(f.get(B), m.i32.shl(f.get(n), I(2)))),
    f.for(k, I(0), f.at(kE), 1, [
      f.set(bv[0]!, m.v128.load(0, 4, f.get(bp))),
      f.set(bv[1]!, m.v128.load(16, 4, f.get(bp))),
      ...sv.map((v, i) => f.set(v, m.v128.load32_splat(0, 4, m.i32.add(f.get(ap), m.i32.mul(I(i), K4()))))),
      ...sv.flatMap((v, i) => bv.map((w, j) => f.set(acc[2 * i + j]!, c.madd(f.get(v), f.get(w), f.get(acc[2 * i + j]!))))),
      f.set(ap, m.i32.add(f.get(ap), I(4))),
      f.set(bp, m.i32.add(f.get(bp), LDB4())),
    ]),
    ...[0, 1, 2, 3].flatMap((i) => [m.v128.store(0, 4, outAt(i), f.get(acc[2 * i]!)), m.v128.store(16, 4, outAt(i), f.get(acc[2 * i + 1]!))]),
  ];
  // One row × 16 columns (four independent sums: a decode step's one query row would otherwise
  // wait on one accumulator per k in mm_nn_edge).
  const wide = [...bv, f.local(b.v128), f.local(b.v128)];
  const row16 = [
    ...acc.slice(0, 4).map((a) => f.set(a, m.v128.const(new Array(16).fill(0)))),
    f.set(ap, m.i32.add(f.get(A), m.i32.mul(f.get(row), K4()))),
    f.set(bp, m.i32.add(f.get(B), m.i32.shl(f.get(n), I(2)))),
    f.for(k, I(0), f.at(kE), 1, [
      f.set(sv[0]!, m.v128.load32_splat(0, 4, f.get(ap))),
      ...wide.map((w, j) => f.set(w, m.v128.load(16 * j, 4, f.get(bp)))),
      ...wide.map((w, j) => f.set(acc[j]!, c.madd(f.get(sv[0]!), f.get(w), f.get(acc[j]!)))),
      f.set(ap, m.i32.add(f.get(ap), I(4))),
      f.set(bp, m.i32.add(f.get(bp), LDB4())),
    ]),
    ...[0, 1, 2, 3].map((j) => m.v128.store(16 * j, 4, outAt(0), f.get(acc[j]!))),
  ];
  const call = (r0: Expr, r1: Expr, n0: Expr, n1: Expr) => m.call(edge, [f.get(A), f.get(B), f.get(OUT), f.get(M), f.get(N), f.get(K), f.get(LDB), r0, r1, n0, n1], b.none);
  f.finish(name, b.none, [
    f.set(mT, m.i32.and(f.get(M), I(~3))),
    f.set(nT, m.i32.and(f.get(N), I(~7))),
    f.for(row, I(0), f.at(mT), 4, [limit(4), f.for(n, I(0), f.at(nT), 8, tile)]),
    call(I(0), f.get(mT), f.get(nT), f.get(N)),
    f.set(nT, m.i32.and(f.get(N), I(~15))),
    f.for(row, f.get(mT), f.at(M), 1, [limit(1), f.for(n, I(0), f.at(nT), 16, row16)]),
    call(f.get(mT), f.get(M), f.get(nT), f.get(N)),
  ]);
}

/** Rows per unit of mm_nn_rows: mm_nn's tile height, so a split leaves its row groups as they are (and its sums bit for bit). */
const NN_ROWS = 4;
/** mm_nn is split across threads from this many output elements (smaller ones lose more to the hand-off than they gain). */
const NN_PAR_MIN = 1 << 16;

/**
 * mm_nn_rows(a, b, out, M, N, K, ldb, P0, P1): mm_nn over rows [4·P0, min(M, 4·P1)), without a
 * causal block: the unit threads split (the backward pass's gradient matmuls gᵀ · x, whose b is
 * an activation, not a packed weight).
 */
function buildMatmulNNRows(c: WasmCtx, name: string, nn: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 9 }, () => b.i32));
  const [A, B, OUT, M, N, K, LDB, P0, P1] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const I = (v: number) => m.i32.const(v);
  const [r0, r1] = [f.local(b.i32), f.local(b.i32)];
  f.finish(name, b.none, [
    f.set(r0, m.i32.mul(f.get(P0), I(NN_ROWS))),
    f.set(r1, m.i32.mul(f.get(P1), I(NN_ROWS))),
    m.if(m.i32.gt_s(f.get(r1), f.get(M)), f.set(r1, f.get(M))),
    m.if(
      m.i32.lt_s(f.get(r0), f.get(r1)),
      m.call(
        nn,
        [
          m.i32.add(f.get(A), m.i32.shl(m.i32.mul(f.get(r0), f.get(K)), I(2))),
          f.get(B),
          m.i32.add(f.get(OUT), m.i32.shl(m.i32.mul(f.get(r0), f.get(N)), I(2))),
          m.i32.sub(f.get(r1), f.get(r0)),
          f.get(N),
          f.get(K),
          f.get(LDB),
          I(0),
          I(0),
        ],
        b.none,
      ),
    ),
  ]);
}

/** mm_nt_dot: out[r, n] for r in [R0, R1), n in [N0, N1): one dot product each, four k at a time. */
function buildNtDot(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 11 }, () => b.i32));
  const [A, B, OUT, , N, K, LDB, R0, R1, N0, N1] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const [row, n, k, acc, s] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.v128), f.local(b.f32)];
  const aAt = () => m.i32.add(f.get(A), m.i32.shl(m.i32.add(m.i32.mul(f.get(row), f.get(K)), f.get(k)), m.i32.const(2)));
  const bAt = () => m.i32.add(f.get(B), m.i32.shl(m.i32.add(m.i32.mul(f.get(n), f.get(LDB)), f.get(k)), m.i32.const(2)));
  const lane = (l: number) => m.f32x4.extract_lane(f.get(acc), l);
  f.finish(name, b.none, [
    f.for(row, f.get(R0), f.at(R1), 1, [
      f.for(n, f.get(N0), f.at(N1), 1, [
        f.set(acc, m.v128.const(new Array(16).fill(0))),
        f.set(k, m.i32.const(0)),
        m.block('vec', [
          m.loop('ks', m.block(null, [
            m.br('vec', m.i32.gt_s(m.i32.add(f.get(k), m.i32.const(4)), f.get(K))),
            f.set(acc, c.madd(m.v128.load(0, 4, aAt()), m.v128.load(0, 4, bAt()), f.get(acc))),
            f.set(k, m.i32.add(f.get(k), m.i32.const(4))),
            m.br('ks'),
          ])),
        ]),
        f.set(s, m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)))),
        f.for(k, f.get(k), f.at(K), 1, [f.set(s, m.f32.add(f.get(s), m.f32.mul(m.f32.load(0, 4, aAt()), m.f32.load(0, 4, bAt()))))]),
        m.f32.store(0, 4, m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(f.get(row), f.get(N)), f.get(n)), m.i32.const(2))), f.get(s)),
      ]),
    ]),
  ]);
}

/**
 * mm_nt(a, b, out, M, N, K, ldb): b [N, K] with rows ldb floats apart (attention scores; ldb > K
 * reads the keys in place in the cache). With K a multiple of 4, 2 rows × 4 columns at a
 * time: 8 f32x4 accumulators over k (2 + 4 loads for 8 multiply-adds), each summed across lanes
 * into one vector of 4 results per row; an odd last row (a decode step's one query) takes 1 × 4
 * tiles; the columns left over, and any other K, take one dot product at a time (mm_nt_dot).
 */
export function buildMatmulNT(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const dot = c.helper('mm_nt_dot', () => buildNtDot(c, 'mm_nt_dot'));
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
  const [A, B, OUT, M, N, K, LDB, CS, OFF] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const I = (v: number) => m.i32.const(v);
  const i32 = () => f.local(b.i32);
  const [row, n, q, ap, bp, mT, nT, nE] = [i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32()];
  // CS > 0: a causal softmax reads row r only up to column (r mod CS) + OFF; the tiles stop at the
  // last column either row of a pair needs (rounded up to the tile), the rest is never read.
  const keep = causalKeep(c, f, CS, OFF);
  const limit = (rows: 1 | 2) => {
    // the pair's second row keeps one column more, unless it starts the next block
    const lim = rows === 1 ? keep(f.get(row)) : m.select(m.i32.eqz(m.i32.rem_u(m.i32.add(f.get(row), I(1)), f.get(CS))), keep(f.get(row)), keep(m.i32.add(f.get(row), I(1))));
    return m.if(
      m.i32.eqz(f.get(CS)),
      f.set(nE, f.get(nT)),
      m.block(null, [f.set(nE, m.i32.and(m.i32.add(lim, I(3)), I(~3))), m.if(m.i32.gt_s(f.get(nE), f.get(nT)), f.set(nE, f.get(nT)))]),
    );
  };
  const acc = Array.from({ length: 8 }, () => f.local(b.v128));
  const av = [f.local(b.v128), f.local(b.v128)];
  const bv = Array.from({ length: 4 }, () => f.local(b.v128));
  const [t0, t1] = [f.local(b.v128), f.local(b.v128)];
  const K4 = () => m.i32.shl(f.get(K), I(2));
  const LDB4 = () => m.i32.shl(f.get(LDB), I(2));
  const outAt = (r: Expr) => m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(r, f.get(N)), f.get(n)), I(2)));
  const store = (r: Expr, v: readonly number[]) => {
    const h = laneSums4(c, f, v, t0, t1);
    return m.block(null, [...h.pre, m.v128.store(0, 4, outAt(r), h.value)]);
  };
  /** rows (2, or 1 for an odd last row: decode's one query) × 4 columns. */
  const tile = (rows: 1 | 2) => {
    const rs = rows === 2 ? [0, 1] : [0];
    return [
      ...acc.slice(0, 4 * rows).map((a) => f.set(a, m.v128.const(new Array(16).fill(0)))),
      f.set(ap, m.i32.add(f.get(A), m.i32.mul(f.get(row), K4()))),
      f.set(bp, m.i32.add(f.get(B), m.i32.mul(f.get(n), LDB4()))),
      f.for(q, I(0), f.at(K), 4, [
        f.set(av[0]!, m.v128.load(0, 4, f.get(ap))),
        ...(rows === 2 ? [f.set(av[1]!, m.v128.load(0, 4, m.i32.add(f.get(ap), K4())))] : []),
        ...bv.map((v, j) => f.set(v, m.v128.load(0, 4, m.i32.add(f.get(bp), m.i32.mul(I(j), LDB4()))))),
        ...rs.flatMap((i) => bv.map((v, j) => f.set(acc[4 * i + j]!, c.madd(f.get(av[i]!), f.get(v), f.get(acc[4 * i + j]!))))),
        f.set(ap, m.i32.add(f.get(ap), I(16))),
        f.set(bp, m.i32.add(f.get(bp), I(16))),
      ]),
      ...rs.map((i) => store(m.i32.add(f.get(row), I(i)), acc.slice(4 * i, 4 * i + 4))),
    ];
  };
  const call = (r0: Expr, r1: Expr, n0: Expr, n1: Expr) => m.call(dot, [f.get(A), f.get(B), f.get(OUT), f.get(M), f.get(N), f.get(K), f.get(LDB), r0, r1, n0, n1], b.none);
  f.finish(name, b.none, [
    m.if(
      m.i32.and(f.get(K), I(3)),
      call(I(0), f.get(M), I(0), f.get(N)),
      m.block(null, [
        f.set(mT, m.i32.and(f.get(M), I(~1))),
        f.set(nT, m.i32.and(f.get(N), I(~3))),
        f.for(row, I(0), f.at(mT), 2, [limit(2), f.for(n, I(0), f.at(nE), 4, tile(2))]),
        m.if(m.i32.lt_s(f.get(mT), f.get(M)), m.block(null, [f.set(row, f.get(mT)), limit(1), f.for(n, I(0), f.at(nE), 4, tile(1))])),
        call(I(0), f.get(M), f.get(nT), f.get(N)),
      ]),
    ),
  ]);
}

export const matmulKernel: WasmKernel = (c) => {
  const { m } = c;
  const transB = c.node.attrs['transB'] === true;
  const [ta, tb] = [c.types[0]!, c.types[1]!];
  const [Md, Kd] = ta.shape.slice(-2) as [Dim, Dim];
  const Nd = tb.shape.at(transB ? -2 : -1)!;
  if (c.packed(1)) {
    const fn = c.helper('mm_pk', () => buildMatmulPacked(c, 'mm_pk'));
    const N = Nd as number;
    return [c.parallel(fn, [c.in(0), c.in(1), c.out(), c.numel(ta.shape.slice(0, -1)), m.i32.const(N), c.dim(Kd)], Math.ceil(N / 16))];
  }
  const name = transB ? 'mm_nt' : 'mm_nn';
  const fn = c.helper(name, () => (transB ? buildMatmulNT : buildMatmulNN)(c, name));
  const [ab, bb, ob] = [ta.shape.slice(0, -2), tb.shape.slice(0, -2), c.node.type.shape.slice(0, -2)];
  // b read in place through a head swap ([H, T, E] over [T, H, E] bytes, layout.ts): batch h
  // starts E floats in, and its rows are H·E floats apart.
  const swapped = c.swapped(1);
  const inner = () => c.dim(tb.shape[2]!);
  const ldb = swapped ? () => m.i32.mul(c.dim(tb.shape[0]!), inner()) : () => c.dim(tb.shape.at(-1)!);
  const call = (a: Expr, bq: Expr, o: Expr, M: Expr) => m.call(fn, [a, bq, o, M, c.dim(Nd), c.dim(Kd), ldb(), ...causalArgs(c, transB ? undefined : c.causalZeros)], c.b.none);
  if (bb.length === 0 && ab.length === ob.length && ab.every((d, i) => dimEq(d, ob[i]!))) {
    // a large mm_nn with a static row count splits its rows across the threads
    const rows = ta.shape.slice(0, -1);
    const M = rows.every(isStatic) ? rows.reduce<number>((x, d) => x * (d as number), 1) : undefined;
    if (!transB && !swapped && !c.causalZeros && M !== undefined && isStatic(Nd) && M > NN_ROWS && M * Nd >= NN_PAR_MIN) {
      const par = c.helper('mm_nn_rows', () => buildMatmulNNRows(c, 'mm_nn_rows', fn));
      return [c.parallel(par, [c.in(0), c.in(1), c.out(), m.i32.const(M), c.dim(Nd), c.dim(Kd), ldb()], Math.ceil(M / NN_ROWS))];
    }
    return [call(c.in(0), c.in(1), c.out(), c.numel(ta.shape.slice(0, -1)))];
  }
  const mk = () => m.i32.mul(c.dim(Md), c.dim(Kd));
  const kn = swapped ? inner : () => m.i32.mul(c.dim(Kd), c.dim(Nd));
  const mn = () => m.i32.mul(c.dim(Md), c.dim(Nd));
  const byte = (base: Expr, off: Expr, per: Expr) => m.i32.add(base, m.i32.shl(m.i32.mul(off, per), m.i32.const(2)));
  const perBatch = nest(c, ob, [broadcastStrides(ab, ob), broadcastStrides(bb, ob), broadcastStrides(ob, ob)], ([pa, pb, po]) => [
    call(byte(c.in(0), pa!(), mk()), byte(c.in(1), pb!(), kn()), byte(c.out(), po!(), mn()), c.dim(Md)),
  ]);
  // A few rows per head over the cache in place (a decode step): walk the cache row by row.
  const D = tb.shape[2]!;
  const oneBatch = ab.length === 1 && ob.length === 1 && dimEq(ab[0]!, bb[0]!) && dimEq(ob[0]!, bb[0]!);
  if (!swapped || !oneBatch || !isStatic(D) || D % 4 !== 0) return perBatch;
  const kvName = transB ? 'mm_kvt' : 'mm_kvn';
  const kvFn = c.helper(kvName, () => (transB ? buildKvScores : buildKvValues)(c, kvName));
  const T = transB ? Nd : Kd;
  const kvCall = m.call(kvFn, [c.in(0), c.in(1), c.out(), c.dim(bb[0]!), c.dim(Md), c.dim(T), m.i32.const(D), ldb()], c.b.none);
  return [m.if(m.i32.le_s(c.dim(Md), m.i32.const(KV_ROWS_MAX)), kvCall, m.block(null, perBatch))];
};

/**
 * Attention with few query rows (a decode step) over the KV cache read in place: b is the cache
 * [T, Hb, D] (rows ldb = Hb·D floats apart) and a holds Hb batches of R rows. Walking one batch
 * (head) at a time, as mm_nt and mm_nn do, reads each cached row in Hb pieces D floats long, a
 * strided pattern that ran at ~9 GB/s from RAM (stories110M at 950 positions: 3.7 ms of a 23 ms
 * step for the scores). These walk the cache row by row instead, every head of a row at once.
 * D must be a multiple of 4. `KV_ROWS_MAX`: the most rows per batch they take (decode has G·1).
 */
export const KV_ROWS_MAX = 8;

/**
 * What mm_kvt and mm_kvn share: their parameters (a, b, out, Hb, R, T, D, ldb), and the walk over
 * a's rows i, where `bOff` is the byte offset of row i's head inside a cached row and `r` counts
 * the rows of that head.
 */
function kvFrame(c: WasmCtx) {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 8 }, () => b.i32));
  const I = (v: number) => m.i32.const(v);
  const [r, bOff] = [f.local(b.i32), f.local(b.i32)];
  const P = { A: 0, B: 1, OUT: 2, HB: 3, R: 4, T: 5, D: 6, LDB: 7 } as const;
  const D4 = () => m.i32.shl(f.get(P.D), I(2));
  return {
    f,
    I,
    P,
    D4,
    bOff,
    firstRow: () => [f.set(r, I(0)), f.set(bOff, I(0))],
    /** On to the next row of a: its head's next, or the next head's first. */
    nextRow: () => [f.set(r, m.i32.add(f.get(r), I(1))), m.if(m.i32.eq(f.get(r), f.get(P.R)), m.block(null, [f.set(r, I(0)), f.set(bOff, m.i32.add(f.get(bOff), D4()))]))],
  };
}

/**
 * mm_kvt(a, b, out, Hb, R, T, D, ldb): out[i, t] = a[i, :] · b[t, ⌊i/R⌋, :] for the Hb·R rows i
 * of a ([Hb·R, D]) and out ([Hb·R, T]). Four rows at a time (four sums in flight), over every
 * cached row t in order.
 */
export function buildKvScores(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const { f, I, P, D4, bOff, firstRow, nextRow } = kvFrame(c);
  const { A, B, OUT, HB, R, T, LDB } = P;
  const i32 = () => f.local(b.i32);
  const [t, i, rows, kt, ap, d] = [i32(), i32(), i32(), i32(), i32(), i32()];
  const kp = [i32(), i32(), i32(), i32()];
  const acc = [f.local(b.v128), f.local(b.v128), f.local(b.v128), f.local(b.v128)];
  const av = f.local(b.v128);
  const [t0, t1] = [f.local(b.v128), f.local(b.v128)];
  /** Point kp[j] at row i's head in cache row t, and step to the next row. */
  const keyOf = (j: number) => [f.set(kp[j]!, m.i32.add(f.get(kt), f.get(bOff))), ...nextRow()];
  // With `two`, cache rows t and t + half at once: two memory streams, eight sums in flight.
  const [half, ko] = [i32(), i32()];
  const acc2 = [f.local(b.v128), f.local(b.v128), f.local(b.v128), f.local(b.v128)];
  const outAt = (row: Expr, second: boolean) =>
    m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(row, f.get(T)), second ? m.i32.add(f.get(t), f.get(half)) : f.get(t)), I(2)));
  /** The lane sums of v[0..3] as one vector, left in av. */
  const hsum = (v: readonly number[]) => {
    const h = laneSums4(c, f, v, t0, t1);
    return [...h.pre, f.set(av, h.value)];
  };
  const zero = () => m.v128.const(new Array(16).fill(0));
  const aAt = (j: number) => m.i32.add(m.i32.add(f.get(ap), m.i32.mul(I(j), D4())), f.get(d));
  const kAt = (j: number, second: boolean) => m.i32.add(m.i32.add(f.get(kp[j]!), f.get(d)), second ? f.get(ko) : I(0));
  const four = (two: boolean) => [
    ...[0, 1, 2, 3].flatMap(keyOf),
    ...acc.map((a) => f.set(a, zero())),
    ...(two ? acc2.map((a) => f.set(a, zero())) : []),
    f.for(d, I(0), D4, 16, [
      ...acc.flatMap((a, j) => [
        f.set(av, m.v128.load(0, 4, aAt(j))),
        f.set(a, c.madd(f.get(av), m.v128.load(0, 4, kAt(j, false)), f.get(a))),
        ...(two ? [f.set(acc2[j]!, c.madd(f.get(av), m.v128.load(0, 4, kAt(j, true)), f.get(acc2[j]!)))] : []),
      ]),
    ]),
    ...[false, ...(two ? [true] : [])].flatMap((second) => [
      ...hsum(second ? acc2 : acc),
      ...[0, 1, 2, 3].map((j) => m.f32.store(0, 4, outAt(m.i32.add(f.get(i), I(j)), second), m.f32x4.extract_lane(f.get(av), j))),
    ]),
    f.set(ap, m.i32.add(f.get(ap), m.i32.shl(D4(), I(2)))),
  ];
  const lanes = (v: number) => m.f32.add(m.f32.add(m.f32x4.extract_lane(f.get(v), 0), m.f32x4.extract_lane(f.get(v), 1)), m.f32.add(m.f32x4.extract_lane(f.get(v), 2), m.f32x4.extract_lane(f.get(v), 3)));
  const one = (two: boolean) => [
    ...keyOf(0),
    f.set(acc[0]!, zero()),
    ...(two ? [f.set(acc2[0]!, zero())] : []),
    f.for(d, I(0), D4, 16, [
      f.set(av, m.v128.load(0, 4, aAt(0))),
      f.set(acc[0]!, c.madd(f.get(av), m.v128.load(0, 4, kAt(0, false)), f.get(acc[0]!))),
      ...(two ? [f.set(acc2[0]!, c.madd(f.get(av), m.v128.load(0, 4, kAt(0, true)), f.get(acc2[0]!)))] : []),
    ]),
    m.f32.store(0, 4, outAt(f.get(i), false), lanes(acc[0]!)),
    ...(two ? [m.f32.store(0, 4, outAt(f.get(i), true), lanes(acc2[0]!))] : []),
    f.set(ap, m.i32.add(f.get(ap), D4())),
  ];
  const row = (two: boolean) => [
    f.set(kt, m.i32.add(f.get(B), m.i32.shl(m.i32.mul(f.get(t), f.get(LDB)), I(2)))),
    f.set(ap, f.get(A)),
    ...firstRow(),
    f.set(i, I(0)),
    m.block(two ? 'fours2' : 'fours1', [m.loop(two ? 'four2' : 'four1', m.block(null, [m.br(two ? 'fours2' : 'fours1', m.i32.gt_s(m.i32.add(f.get(i), I(4)), f.get(rows))), ...four(two), f.set(i, m.i32.add(f.get(i), I(4))), m.br(two ? 'four2' : 'four1')]))]),
    f.for(i, f.get(i), f.at(rows), 1, one(two)),
  ];
  f.finish(name, b.none, [
    f.set(rows, m.i32.mul(f.get(HB), f.get(R))),
    f.set(half, m.i32.shr_u(f.get(T), I(1))),
    f.set(ko, m.i32.shl(m.i32.mul(f.get(half), f.get(LDB)), I(2))),
    f.for(t, I(0), f.at(half), 1, row(true)),
    // an odd last row alone
    m.if(m.i32.and(f.get(T), I(1)), m.block(null, [f.set(t, m.i32.sub(f.get(T), I(1))), ...row(false)])),
  ]);
}

/**
 * mm_kvn(a, b, out, Hb, R, T, D, ldb): out[i, :] = Σ_t a[i, t] · b[t, ⌊i/R⌋, :] for the Hb·R
 * rows i of a ([Hb·R, T]) and out ([Hb·R, D]): out is cleared, then every cached row t in order
 * adds a[i, t] times its head's D values to row i (the same sums, in the same order of t, as
 * mm_nn's).
 */
export function buildKvValues(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const { f, I, P, D4, bOff, firstRow, nextRow } = kvFrame(c);
  const { A, B, OUT, HB, R, T, LDB } = P;
  const i32 = () => f.local(b.i32);
  const [t, i, rows, kt, op, d, vp] = [i32(), i32(), i32(), i32(), i32(), i32(), i32()];
  const s = f.local(b.v128);
  f.finish(name, b.none, [
    f.set(rows, m.i32.mul(f.get(HB), f.get(R))),
    m.memory.fill(f.get(OUT), I(0), m.i32.mul(f.get(rows), D4())),
    f.for(t, I(0), f.at(T), 1, [
      f.set(kt, m.i32.add(f.get(B), m.i32.shl(m.i32.mul(f.get(t), f.get(LDB)), I(2)))),
      f.set(op, f.get(OUT)),
      ...firstRow(),
      f.for(i, I(0), f.at(rows), 1, [
        f.set(s, m.v128.load32_splat(0, 4, m.i32.add(f.get(A), m.i32.shl(m.i32.add(m.i32.mul(f.get(i), f.get(T)), f.get(t)), I(2))))),
        f.set(vp, m.i32.add(f.get(kt), f.get(bOff))),
        f.for(d, I(0), D4, 16, [
          m.v128.store(0, 4, m.i32.add(f.get(op), f.get(d)), c.madd(f.get(s), m.v128.load(0, 4, m.i32.add(f.get(vp), f.get(d))), m.v128.load(0, 4, m.i32.add(f.get(op), f.get(d))))),
        ]),
        f.set(op, m.i32.add(f.get(op), D4())),
        ...nextRow(),
      ]),
    ]),
  ]);
}
