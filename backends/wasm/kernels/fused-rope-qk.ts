/**
 * fused rope_qk: attention scores with the rotary embedding applied inside the kernel (the form
 * is read from the body by the js backend's `ropeQkForm`). The result [Hkv, g·S, T] is laid out
 * scores[h, s, t] with h = kv·g + j, so for each kv head the kernel rotates that head's T keys
 * into the scratch area once, then the g·S query rows of its group after them, and takes the
 * scores with mm_nt (the unfused kernel's dot products). Keys that come rotated (the step graph's
 * cache) are read where they are, Hkv·D floats apart. Angles p·base^(−2i/D) and their cos/sin come
 * from the (base, D) table (rope-table.ts), in f64, as in the rope kernel; rotated values are
 * rounded to f32. Keys from the cache: every query row is rotated first; a few per kv head (a
 * decode step) take mm_kvt, which walks the cache row by row. Scratch: (T + g·S)·D floats, or
 * H·S·D, reserved by the host (`scratchElems`).
 */
import { type Dim, dimAdd, dimScale } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import type { FusedBody } from '../../../graph/ops.js';
import { ropeQkForm } from '../../js/kernels/fused-rope-qk.js';
import { Fn, type Expr } from '../fn.js';
import type { WasmCtx, WasmKernel } from './kernel.js';
import { KV_ROWS_MAX, buildKvScores, buildMatmulNT, causalArgs } from './matmul.js';

/** Scratch floats a rope_qk node needs (undefined for any other node, or a body of another form). */
export function ropeQkScratch(n: Node, types: readonly { shape: readonly Dim[] }[]): Dim | undefined {
  if (n.op !== 'fused' || n.attrs['pattern'] !== 'rope_qk') return undefined;
  const form = ropeQkForm(n.attrs['body'] as FusedBody);
  if (!form) return undefined;
  const S = types[form.q.arg]!.shape[0]!;
  const T = types[form.k.arg]!.shape[0]!;
  // rotated keys and one group's query rows; or, keys from the cache, every query row
  return form.k.rope ? dimAdd(dimScale(T, form.D), dimScale(S, (form.H / form.Hkv) * form.D)) : dimScale(S, form.H * form.D);
}

/**
 * rope_row(x, y, D, p, base, half, tab): the D-float row at x rotated at position p into y, in f64
 * (rounded to f32 on the store). cos/sin come from the table at tab for p ≥ 0, else from the
 * host's Math.
 */
export function buildRopeRow(c: WasmCtx, name: string): void {
  const { b, m } = c;
  const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.f64, b.i32, b.i32]);
  const [X, Y, D, P, BASE, HALF, TAB] = [0, 1, 2, 3, 4, 5, 6];
  const [i, h, ia, ib, ang, cs, sn, pa, pb, tp] = [b.i32, b.i32, b.i32, b.i32, b.f64, b.f64, b.f64, b.f64, b.f64, b.i32].map((t) => f.local(t)) as number[];
  const at = (base: number, k: number) => m.i32.add(f.get(base), m.i32.shl(f.get(k), m.i32.const(2)));
  const g = (k: number) => f.get(k);
  const direct = [
    f.set(ang!, m.f64.mul(m.f64.convert_s.i32(f.get(P)), m.call('pow', [f.get(BASE), m.f64.div(m.f64.convert_s.i32(m.i32.mul(g(i!), m.i32.const(-2))), m.f64.convert_s.i32(f.get(D)))], b.f64))),
    f.set(cs!, m.call('cos', [g(ang!)], b.f64)),
    f.set(sn!, m.call('sin', [g(ang!)], b.f64)),
  ];
  const fromTable = [f.set(cs!, m.f64.load(0, 8, g(tp!))), f.set(sn!, m.f64.load(8, 8, g(tp!))), f.set(tp!, m.i32.add(g(tp!), m.i32.const(16)))];
  f.finish(name, b.none, [
    f.set(h!, m.i32.shr_u(f.get(D), m.i32.const(1))),
    f.set(tp!, m.i32.add(f.get(TAB), m.i32.shl(m.i32.mul(f.get(P), g(h!)), m.i32.const(4)))),
    f.for(i!, m.i32.const(0), f.at(h!), 1, [
      m.if(m.i32.ge_s(f.get(P), m.i32.const(0)), m.block(null, fromTable), m.block(null, direct)),
      f.set(ia!, m.select(f.get(HALF), g(i!), m.i32.shl(g(i!), m.i32.const(1)))),
      f.set(ib!, m.select(f.get(HALF), m.i32.add(g(ia!), g(h!)), m.i32.add(g(ia!), m.i32.const(1)))),
      f.set(pa!, m.f64.promote(m.f32.load(0, 4, at(X, ia!)))),
      f.set(pb!, m.f64.promote(m.f32.load(0, 4, at(X, ib!)))),
      m.f32.store(0, 4, at(Y, ia!), m.f32.demote(m.f64.sub(m.f64.mul(g(pa!), g(cs!)), m.f64.mul(g(pb!), g(sn!))))),
      m.f32.store(0, 4, at(Y, ib!), m.f32.demote(m.f64.add(m.f64.mul(g(pa!), g(sn!)), m.f64.mul(g(pb!), g(cs!))))),
    ]),
  ]);
}

export const ropeQkKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const form = ropeQkForm(c.node.attrs['body'] as FusedBody)!;
  const { H, Hkv, D } = form;
  const G = H / Hkv;
  const row = c.helper('rope_row', () => buildRopeRow(c, 'rope_row'));
  const mm = c.helper('mm_nt', () => buildMatmulNT(c, 'mm_nt'));
  const S = () => c.dim(c.types[form.q.arg]!.shape[0]!);
  const T = () => c.dim(c.types[form.k.arg]!.shape[0]!);
  const [kv, t, j, s, qr] = [0, 0, 0, 0, 0].map(() => f.local(b.i32)) as number[];
  const I = (v: number) => m.i32.const(v);
  const g = (k: number) => f.get(k);
  const bytes = (e: Expr) => m.i32.shl(e, I(2));
  /** Byte address of row r (element units: r·D) from base. */
  const rowAt = (base: Expr, r: Expr) => m.i32.add(base, bytes(m.i32.mul(r, I(D))));
  const rotateQ = (into: (j: Expr, s: Expr) => Expr) =>
    f.for(j!, I(0), () => I(G), 1, [
      f.for(s!, I(0), S, 1, [
        // query row of head h = kv·G + j at token s
        f.set(qr!, m.i32.add(m.i32.mul(g(s!), I(H)), m.i32.add(m.i32.mul(g(kv!), I(G)), g(j!)))),
        m.call(row, [rowAt(c.in(form.q.arg), g(qr!)), into(g(j!), g(s!)), I(D), m.i32.add(c.dim(form.q.offset), g(s!)), m.f64.const(form.q.base), I(form.q.half ? 1 : 0), c.ropeTable(form.q.base, D)], b.none),
      ]),
    ]);
  const GS = () => m.i32.mul(I(G), S());
  // rows a causal softmax reads in part: mm_nt leaves the columns it never reads (causal-rows.ts)
  const causal = () => causalArgs(c, c.causalRows);
  const outOf = (k: Expr) => m.i32.add(c.out(), bytes(m.i32.mul(m.i32.mul(k, I(G)), m.i32.mul(S(), T()))));
  if (!form.k.rope) {
    // Keys that come rotated (the cache) are read in place, Hkv·D floats apart. Every query row
    // is rotated first, into scratch row (kv·G + j)·S + s; few rows per kv head (a decode step)
    // walk the cache row by row (mm_kvt), more take mm_nt's tiles head by head.
    const qAt = (k: Expr) => rowAt(c.scratch(), m.i32.mul(k, GS()));
    const perHead = f.for(kv!, I(0), () => I(Hkv), 1, [m.call(mm, [qAt(g(kv!)), rowAt(c.in(form.k.arg), g(kv!)), outOf(g(kv!)), GS(), T(), I(D), I(Hkv * D), ...causal()], b.none)]);
    const rotate = f.for(kv!, I(0), () => I(Hkv), 1, [rotateQ((jj, ss) => rowAt(qAt(g(kv!)), m.i32.add(m.i32.mul(jj, S()), ss)))]);
    if (D % 4 !== 0) return [rotate, perHead];
    const kvt = c.helper('mm_kvt', () => buildKvScores(c, 'mm_kvt'));
    return [
      rotate,
      m.if(m.i32.le_s(GS(), I(KV_ROWS_MAX)), m.call(kvt, [c.scratch(), c.in(form.k.arg), c.out(), I(Hkv), GS(), T(), I(D), I(Hkv * D)], b.none), perHead),
    ];
  }
  // Rotated keys go to the scratch area, the query rows after them.
  const qRows = () => rowAt(c.scratch(), T());
  return [
    f.for(kv!, I(0), () => I(Hkv), 1, [
      f.for(t!, I(0), T, 1, [
        m.call(row, [rowAt(c.in(form.k.arg), m.i32.add(m.i32.mul(g(t!), I(Hkv)), g(kv!))), rowAt(c.scratch(), g(t!)), I(D), m.i32.add(c.dim(form.k.offset), g(t!)), m.f64.const(form.k.base), I(form.k.half ? 1 : 0), c.ropeTable(form.k.base, D)], b.none),
      ]),
      // the group's query rows into scratch rows j·S + s after the keys
      rotateQ((jj, ss) => rowAt(qRows(), m.i32.add(m.i32.mul(jj, S()), ss))),
      m.call(mm, [qRows(), c.scratch(), outOf(g(kv!)), GS(), T(), I(D), I(D), ...causal()], b.none),
    ]),
  ];
};
