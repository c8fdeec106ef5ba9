/**
 * fused swiglu: act(x·W1ᵀ) ⊙ (x·W3ᵀ) in one pass (act is SiLU for SwiGLU; any unary op is read
 * from the body by the js backend's `swigluForm`). The gate and up projections are never stored.
 *  - swiglu_pk: W1 and W3 params, repacked into 16-column panels as mm_pk's weights. Per panel,
 *    pairs of rows run mm_pk's 2×16 tile over the gate panel and park f32(act(gate)) in the
 *    output; then the pairs run the tile over the up panel and multiply. (Gate then up per pair
 *    read 96 KB of panels in turn, more than L1 holds: 19.2 against 18.7 ms per stories110M
 *    layer.) A single row (decode) takes gate and up side by side (4 + 4 accumulators). SiLU
 *    goes four lanes at a time in f32 (silu4), other activations lane by lane in f64.
 *    Column-split, so threads share it.
 *  - swiglu_<act>: W1 and W3 row-major (not params): the gate and up dot products side by side
 *    four k at a time, then out = act(gate)·up.
 */
import type { Dim } from '../../../graph/dim.js';
import type { FusedBody, UnaryOp } from '../../../graph/ops.js';
import { swigluForm } from '../../js/kernels/fused-swiglu.js';
import { type Expr, Fn } from '../fn.js';
import { unaryF64 } from './elementwise.js';
import { silu4 } from './exp.js';
import type { WasmCtx, WasmKernel } from './kernel.js';

function buildSwiglu(c: WasmCtx, name: string, act: UnaryOp): void {
  const { b, m } = c;
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
  const [X, WG, WU, OUT, M, N, K] = [0, 1, 2, 3, 4, 5, 6];
  const [row, n, k, ga, ua, gs, us, gv] = [b.i32, b.i32, b.i32, b.v128, b.v128, b.f32, b.f32, b.f64].map((t) => f.local(t)) as number[];
  const [xRow, wRow] = [f.local(b.i32), f.local(b.i32)];
  const off = () => m.i32.shl(f.get(k!), m.i32.const(2));
  const xAt = () => m.i32.add(f.get(xRow), off());
  const wAt = (w: number) => m.i32.add(m.i32.add(f.get(w), f.get(wRow)), off());
  const hsum = (a: number) => {
    const lane = (l: number) => m.f32x4.extract_lane(f.get(a), l);
    return m.f32.add(m.f32.add(lane(0), lane(1)), m.f32.add(lane(2), lane(3)));
  };
  const K4 = () => m.i32.shl(f.get(K), m.i32.const(2));
  f.finish(name, b.none, [
    f.for(row!, m.i32.const(0), f.at(M), 1, [
      f.set(xRow, m.i32.add(f.get(X), m.i32.mul(f.get(row!), K4()))),
      f.for(n!, m.i32.const(0), f.at(N), 1, [
        f.set(wRow, m.i32.mul(f.get(n!), K4())),
        f.set(ga!, m.v128.const(new Array(16).fill(0))),
        f.set(ua!, m.v128.const(new Array(16).fill(0))),
        f.set(k!, m.i32.const(0)),
        m.block('vec', [
          m.loop('ks', m.block(null, [
            m.br('vec', m.i32.gt_s(m.i32.add(f.get(k!), m.i32.const(4)), f.get(K))),
            f.set(ga!, c.madd(m.v128.load(0, 4, xAt()), m.v128.load(0, 4, wAt(WG)), f.get(ga!))),
            f.set(ua!, c.madd(m.v128.load(0, 4, xAt()), m.v128.load(0, 4, wAt(WU)), f.get(ua!))),
            f.set(k!, m.i32.add(f.get(k!), m.i32.const(4))),
            m.br('ks'),
          ])),
        ]),
        f.set(gs!, hsum(ga!)),
        f.set(us!, hsum(ua!)),
        f.for(k!, f.get(k!), f.at(K), 1, [
          f.set(gs!, m.f32.add(f.get(gs!), m.f32.mul(m.f32.load(0, 4, xAt()), m.f32.load(0, 4, wAt(WG))))),
          f.set(us!, m.f32.add(f.get(us!), m.f32.mul(m.f32.load(0, 4, xAt()), m.f32.load(0, 4, wAt(WU))))),
        ]),
        // act rounded to f32 before the product, as the unfused kernels store it
        f.set(gv!, m.f64.promote(f.get(gs!))),
        f.set(gv!, m.f64.promote(m.f32.demote(unaryF64(c, act, f.at(gv!))))),
        m.f32.store(0, 4, m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(f.get(row!), f.get(N)), f.get(n!)), m.i32.const(2))), m.f32.demote(m.f64.mul(f.get(gv!), m.f64.promote(f.get(us!))))),
      ]),
    ]),
  ]);
}

function buildSwigluPacked(c: WasmCtx, name: string, act: UnaryOp): void {
  const { b, m } = c;
  const f = new Fn(b, m, Array.from({ length: 9 }, () => b.i32));
  const [X, G, U, OUT, M, N, K, P0, P1] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const I = (v: number) => m.i32.const(v);
  const i32 = () => f.local(b.i32);
  const [p, row, k, a0, a1, gp, up, n] = [i32(), i32(), i32(), i32(), i32(), i32(), i32(), i32()];
  const acc = Array.from({ length: 8 }, () => f.local(b.v128));
  const wl = Array.from({ length: 4 }, () => f.local(b.v128));
  const [s0, s1] = [f.local(b.v128), f.local(b.v128)];
  const gv = f.local(b.f64);
  const zero = () => m.v128.const(new Array(16).fill(0));
  const K4 = () => m.i32.shl(f.get(K), I(2));
  const inc = (l: number, by: number) => f.set(l, m.i32.add(f.get(l), I(by)));
  const fma = (accs: readonly number[], sv: number, ws: readonly number[]) => accs.map((a, i) => f.set(a, c.madd(f.get(sv), f.get(ws[i]!), f.get(a))));
  const loads = (ptr: number, count: number, at: () => Expr = () => I(0)) =>
    wl.slice(0, count).map((w, i) => f.set(w, m.v128.load(16 * i, 16, m.i32.add(f.get(ptr), at()))));
  /** out[r, col0 + j] = f32(act(gate_j)) · up_j for the lanes j of `gates`/`ups` inside N. */
  const epilogue = (r: () => Expr, col0: () => Expr, gates: readonly number[], ups: readonly number[]): Expr[] =>
    gates.flatMap((g, vi) =>
      [0, 1, 2, 3].map((l) => {
        const col = () => m.i32.add(col0(), I(4 * vi + l));
        return m.if(m.i32.lt_s(col(), f.get(N)), m.block(null, [
          f.set(gv, m.f64.promote(m.f32x4.extract_lane(f.get(g), l))),
          f.set(gv, m.f64.promote(m.f32.demote(unaryF64(c, act, f.at(gv))))),
          m.f32.store(0, 4, m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(r(), f.get(N)), col()), I(2))), m.f32.demote(m.f64.mul(f.get(gv), m.f64.promote(m.f32x4.extract_lane(f.get(ups[vi]!), l))))),
        ]));
      }),
    );
  const panel = () => m.i32.mul(f.get(p), m.i32.shl(K4(), I(4)));
  const [lo, hi] = [acc.slice(0, 4), acc.slice(4)];
  const outAt = (r: () => Expr, l: number) => m.i32.add(f.get(OUT), m.i32.shl(m.i32.add(m.i32.mul(r(), f.get(N)), m.i32.add(f.get(n), I(l))), I(2)));
  const r1 = () => m.i32.add(f.get(row), I(1));
  /** A 2×16 tile of x·Wᵀ over the panel at `w` into lo (row) and hi (row + 1). */
  const tile = (w: number) => [
    ...acc.map((a) => f.set(a, zero())),
    f.set(a0, m.i32.add(f.get(X), m.i32.mul(f.get(row), K4()))),
    f.set(a1, m.i32.add(f.get(a0), K4())),
    f.set(gp, m.i32.add(f.get(w), panel())),
    f.for(k, I(0), f.at(K), 1, [
      ...loads(gp, 4),
      f.set(s0, m.v128.load32_splat(0, 4, f.get(a0))),
      f.set(s1, m.v128.load32_splat(0, 4, f.get(a1))),
      ...fma(lo, s0, wl),
      ...fma(hi, s1, wl),
      inc(a0, 4),
      inc(a1, 4),
      inc(gp, 64),
    ]),
  ];
  /** Lane by lane inside N: out ← f32(act(gate)) (the gate tile parks in the output). */
  const parkAct = (r: () => Expr, vs: readonly number[]) =>
    vs.flatMap((v, vi) =>
      [0, 1, 2, 3].map((l) =>
        m.if(m.i32.lt_s(m.i32.add(f.get(n), I(4 * vi + l)), f.get(N)), m.block(null, [
          f.set(gv, m.f64.promote(m.f32x4.extract_lane(f.get(v), l))),
          m.f32.store(0, 4, outAt(r, 4 * vi + l), m.f32.demote(unaryF64(c, act, f.at(gv)))),
        ])),
      ),
    );
  /** out ← out · up (an f32 product: the f64 product of two f32 rounded once is the same). */
  const timesUp = (r: () => Expr, vs: readonly number[]) =>
    m.if(
      m.i32.le_s(m.i32.add(f.get(n), I(16)), f.get(N)),
      m.block(null, vs.map((v, vi) => m.v128.store(0, 4, outAt(r, 4 * vi), m.f32x4.mul(m.v128.load(0, 4, outAt(r, 4 * vi)), f.get(v))))),
      m.block(null, vs.flatMap((v, vi) => [0, 1, 2, 3].map((l) =>
        m.if(m.i32.lt_s(m.i32.add(f.get(n), I(4 * vi + l)), f.get(N)), m.f32.store(0, 4, outAt(r, 4 * vi + l), m.f32.mul(m.f32.load(0, 4, outAt(r, 4 * vi + l)), m.f32x4.extract_lane(f.get(v), l)))),
      ))),
    );
  // SiLU four lanes at a time (silu4) on every tile, whole or not, so that a column's value never
  // depends on where its tile ends; other activations lane by lane in f64.
  const vecAct = act === 'silu';
  const full = () => m.i32.le_s(m.i32.add(f.get(n), I(16)), f.get(N));
  const tmp = f.local(b.v128);
  /** Store the vectors `vs` (4 columns each) at row r: whole when the tile is, else the lanes inside N. */
  const storeVecs = (r: () => Expr, vs: readonly (() => Expr)[]) =>
    m.if(
      full(),
      m.block(null, vs.map((v, vi) => m.v128.store(0, 4, outAt(r, 4 * vi), v()))),
      m.block(null, vs.flatMap((v, vi) => [
        f.set(tmp, v()),
        ...[0, 1, 2, 3].map((l) => m.if(m.i32.lt_s(m.i32.add(f.get(n), I(4 * vi + l)), f.get(N)), m.f32.store(0, 4, outAt(r, 4 * vi + l), m.f32x4.extract_lane(f.get(tmp), l)))),
      ])),
    );
  const silu = (v: number) => () => m.call(silu4(c), [f.get(v)], b.v128);
  const park = (r: () => Expr, vs: readonly number[]) => (vecAct ? [storeVecs(r, vs.map(silu))] : parkAct(r, vs));
  const gatePair = [...tile(G), ...park(f.at(row), lo), ...park(r1, hi)];
  const upPair = [...tile(U), timesUp(f.at(row), lo), timesUp(r1, hi)];
  const [gs, us] = [acc.slice(0, 4), acc.slice(4)];
  const single = [
    ...acc.map((a) => f.set(a, zero())),
    f.set(a0, m.i32.add(f.get(X), m.i32.mul(f.get(row), K4()))),
    f.set(gp, m.i32.add(f.get(G), panel())),
    f.set(up, m.i32.add(f.get(U), panel())),
    f.for(k, I(0), f.at(K), 1, [
      f.set(s0, m.v128.load32_splat(0, 4, f.get(a0))),
      ...loads(gp, 4),
      ...fma(gs, s0, wl),
      ...loads(up, 4),
      ...fma(us, s0, wl),
      inc(a0, 4),
      inc(gp, 64),
      inc(up, 64),
    ]),
    ...(vecAct ? [storeVecs(f.at(row), gs.map((g, vi) => () => m.f32x4.mul(silu(g)(), f.get(us[vi]!))))] : epilogue(f.at(row), f.at(n), gs, us)),
  ];
  f.finish(name, b.none, [
    f.for(p, f.get(P0), f.at(P1), 1, [
      f.set(n, m.i32.shl(f.get(p), I(4))),
      f.set(row, I(0)),
      m.block('gateRows', [m.loop('gatePairs', m.block(null, [m.br('gateRows', m.i32.gt_s(m.i32.add(f.get(row), I(2)), f.get(M))), ...gatePair, inc(row, 2), m.br('gatePairs')]))]),
      f.set(row, I(0)),
      m.block('upRows', [m.loop('upPairs', m.block(null, [m.br('upRows', m.i32.gt_s(m.i32.add(f.get(row), I(2)), f.get(M))), ...upPair, inc(row, 2), m.br('upPairs')]))]),
      m.if(m.i32.lt_s(f.get(row), f.get(M)), m.block(null, single)),
    ]),
  ]);
}

export const swigluKernel: WasmKernel = (c) => {
  const form = swigluForm(c.node.attrs['body'] as FusedBody)!;
  if (c.packed(form.gate) && c.packed(form.up)) {
    const name = `swiglu_pk_${form.act}`;
    const fn = c.helper(name, () => buildSwigluPacked(c, name, form.act));
    const xs = c.types[form.x]!.shape;
    const N = c.types[form.gate]!.shape[0] as number;
    return [c.parallel(fn, [c.in(form.x), c.in(form.gate), c.in(form.up), c.out(), c.numel(xs.slice(0, -1)), c.m.i32.const(N), c.dim(xs.at(-1)!)], Math.ceil(N / 16))];
  }
  const fn = c.helper(`swiglu_${form.act}`, () => buildSwiglu(c, `swiglu_${form.act}`, form.act));
  const xs = c.types[form.x]!.shape;
  const N = (c.types[form.gate]!.shape as Dim[])[0]!;
  return [c.m.call(fn, [c.in(form.x), c.in(form.gate), c.in(form.up), c.out(), c.numel(xs.slice(0, -1)), c.dim(N), c.dim(xs.at(-1)!)], c.b.none)];
};
