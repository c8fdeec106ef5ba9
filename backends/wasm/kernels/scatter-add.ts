/**
 * scatter_add: out[v, …] = Σ updates[i, …] over the positions i whose index is v, summed in f64
 * in position order (the interpreter's sum, rounded once), two lanes at a time; rows no index
 * names are 0. The indices are checked first (one outside [0, rows) fails the run, K1017, as
 * gather's does), then the positions are chained per row in the scratch area — head[rows], then
 * next[n] — so that each output row is summed in one pass over its own positions: 8 columns at
 * a time in four f64x2 accumulators, then 4, then one by one.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Node } from '../../../graph/graph.js';
import { type Expr, Fn } from '../fn.js';
import { demote2, promoteHi, promoteLo } from './f64x2.js';
import { FAIL, type WasmCtx, type WasmKernel } from './kernel.js';

/** The scratch scatter_add needs, as a sum of products of dims: rows + the number of indices. */
export function scatterAddScratch(n: Node, types: readonly { shape: readonly Dim[] }[]): (readonly Dim[])[] | undefined {
  if (n.op !== 'scatter_add') return undefined;
  return [[n.attrs['rows'] as Dim], [...types[0]!.shape]];
}

/** Declare `scatter_add(idx, upd, out, n, rows, row, scratch)` (indices already checked). */
function scatterAddFn(c: WasmCtx): string {
  return c.helper('scatter_add', () => {
    const { b, m } = c;
    const f = new Fn(b, m, [b.i32, b.i32, b.i32, b.i32, b.i32, b.i32, b.i32]);
    const [IDX, UPD, OUT, N, ROWS, ROW, HEAD] = [0, 1, 2, 3, 4, 5, 6];
    const I = (v: number) => m.i32.const(v);
    const [i, v, j, o, end8, end4] = Array.from({ length: 6 }, () => f.local(b.i32)) as [number, number, number, number, number, number];
    const [x, a0, a1, a2, a3] = Array.from({ length: 5 }, () => f.local(b.v128)) as [number, number, number, number, number];
    const acc = f.local(b.f64);
    const word = (base: Expr, k: Expr) => m.i32.add(base, m.i32.shl(k, I(2)));
    const head = (k: Expr) => word(f.get(HEAD), k);
    const next = (k: Expr) => word(m.i32.add(f.get(HEAD), m.i32.shl(f.get(ROWS), I(2))), k);
    /** updates[i, j + d] and out[v, j + d] (bytes) */
    const updAt = (d: number) => m.i32.add(word(f.get(UPD), m.i32.add(m.i32.mul(f.get(i), f.get(ROW)), f.get(j))), I(4 * d));
    const outAt = (d: number) => m.i32.add(word(f.get(OUT), m.i32.add(f.get(o), f.get(j))), I(4 * d));
    const zero = () => m.f64x2.splat(m.f64.const(0));
    const addTo = (a: number, e: Expr) => f.set(a, m.f64x2.add(f.get(a), e));
    /** for (i = head[v]; i >= 0; i = next[i]) body */
    let chains = 0;
    const chain = (body: Expr[]) =>
      m.block(null, [
        f.set(i, m.i32.load(0, 4, head(f.get(v)))),
        m.block(`done${++chains}`, [
          m.br(`done${chains}`, m.i32.lt_s(f.get(i), I(0))),
          m.loop(`walk${chains}`, m.block(null, [...body, f.set(i, m.i32.load(0, 4, next(f.get(i)))), m.br(`walk${chains}`, m.i32.ge_s(f.get(i), I(0)))])),
        ]),
      ]);
    f.finish('scatter_add', b.none, [
      m.memory.fill(f.get(HEAD), I(0xff), m.i32.shl(f.get(ROWS), I(2))),
      // chain the positions of each row, in position order (built back to front)
      f.set(i, f.get(N)),
      m.block('linked', [
        m.loop('link', m.block(null, [
          m.br('linked', m.i32.le_s(f.get(i), I(0))),
          f.set(i, m.i32.sub(f.get(i), I(1))),
          f.set(v, m.i32.load(0, 4, word(f.get(IDX), f.get(i)))),
          m.i32.store(0, 4, next(f.get(i)), m.i32.load(0, 4, head(f.get(v)))),
          m.i32.store(0, 4, head(f.get(v)), f.get(i)),
          m.br('link'),
        ])),
      ]),
      f.set(end8, m.i32.and(f.get(ROW), I(~7))),
      f.set(end4, m.i32.and(f.get(ROW), I(~3))),
      f.for(v, I(0), f.at(ROWS), 1, [
        f.set(o, m.i32.mul(f.get(v), f.get(ROW))),
        m.if(
          m.i32.lt_s(m.i32.load(0, 4, head(f.get(v))), I(0)),
          m.memory.fill(word(f.get(OUT), f.get(o)), I(0), m.i32.shl(f.get(ROW), I(2))),
          m.block(null, [
            f.for(j, I(0), f.at(end8), 8, [
              f.set(a0, zero()),
              f.set(a1, zero()),
              f.set(a2, zero()),
              f.set(a3, zero()),
              chain([
                f.set(x, m.v128.load(0, 4, updAt(0))),
                addTo(a0, promoteLo(c, f.get(x))),
                addTo(a1, promoteHi(c, f.get(x))),
                f.set(x, m.v128.load(0, 4, updAt(4))),
                addTo(a2, promoteLo(c, f.get(x))),
                addTo(a3, promoteHi(c, f.get(x))),
              ]),
              m.v128.store(0, 4, outAt(0), demote2(c, f.get(a0), f.get(a1))),
              m.v128.store(0, 4, outAt(4), demote2(c, f.get(a2), f.get(a3))),
            ]),
            f.for(j, f.get(end8), f.at(end4), 4, [
              f.set(a0, zero()),
              f.set(a1, zero()),
              chain([f.set(x, m.v128.load(0, 4, updAt(0))), addTo(a0, promoteLo(c, f.get(x))), addTo(a1, promoteHi(c, f.get(x)))]),
              m.v128.store(0, 4, outAt(0), demote2(c, f.get(a0), f.get(a1))),
            ]),
            f.for(j, f.get(end4), f.at(ROW), 1, [
              f.set(acc, m.f64.const(0)),
              chain([f.set(acc, m.f64.add(f.get(acc), m.f64.promote(m.f32.load(0, 4, updAt(0)))))]),
              m.f32.store(0, 4, outAt(0), m.f32.demote(f.get(acc))),
            ]),
          ]),
        ),
      ]),
    ]);
  });
}

export const scatterAddKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const [idx, upd] = c.types as [(typeof c.types)[0], (typeof c.types)[0]];
  const rows = () => c.dim(c.node.attrs['rows'] as Dim);
  const n = () => c.numel(idx!.shape);
  const [i, v] = [f.local(b.i32), f.local(b.i32)];
  return [
    f.for(i, m.i32.const(0), n, 1, [
      f.set(v, m.i32.load(0, 4, m.i32.add(c.in(0), m.i32.shl(f.get(i), m.i32.const(2))))),
      m.if(m.i32.ge_u(f.get(v), rows()), c.fail(FAIL.gatherIndex, f.get(v), f.get(i), rows())),
    ]),
    m.call(scatterAddFn(c), [c.in(0), c.in(1), c.out(), n(), rows(), c.numel(upd!.shape.slice(idx!.shape.length)), c.scratch()], b.none),
  ];
};
