/**
 * transpose: output axis j walks input axis perm[j] (its row-major stride). A swap of the last
 * two axes ([R, C] → [C, R] per leading index: a weight gradient's xᵀ, attention's dSᵀ) goes in
 * 16×16 blocks instead: element by element, each read of a [seq, vocab] matrix's columns took a
 * cache line of its own; a block reads 16 rows of 16 floats and writes 16 of them.
 */
import type { Dim } from '../../../graph/dim.js';
import type { Expr } from '../fn.js';
import { stridedCopy } from './elementwise.js';
import type { WasmCtx, WasmKernel } from './kernel.js';

const BLOCK = 16;

export const transposeKernel: WasmKernel = (c) => {
  const shape = c.types[0]!.shape;
  const perm = c.node.attrs['perm'] as number[];
  const n = perm.length;
  const swapsLastTwo = n >= 2 && perm[n - 1] === n - 2 && perm[n - 2] === n - 1 && perm.slice(0, -2).every((p, i) => p === i);
  if (!swapsLastTwo) return stridedCopy(c, perm.map((p) => shape.slice(p + 1)));
  return blockedSwap(c, shape);
};

function blockedSwap(c: WasmCtx, shape: readonly Dim[]): Expr[] {
  const { m, f, b } = c;
  const I = (v: number) => m.i32.const(v);
  const [R, C, bb, base, r0, c0, r, col, rEnd, cEnd] = Array.from({ length: 10 }, () => f.local(b.i32)) as [number, number, number, number, number, number, number, number, number, number];
  const min = (x: Expr, y: () => Expr) => {
    const t = f.local(b.i32);
    return m.block(null, [f.set(t, x), m.if(m.i32.gt_s(f.get(t), y()), f.set(t, y())), f.get(t)], b.i32);
  };
  const at = (addr: Expr, k: Expr) => m.i32.add(addr, m.i32.shl(m.i32.add(f.get(base), k), I(2)));
  return [
    f.set(R, c.dim(shape[shape.length - 2]!)),
    f.set(C, c.dim(shape[shape.length - 1]!)),
    f.for(bb, I(0), () => c.numel(shape.slice(0, -2)), 1, [
      f.set(base, m.i32.mul(f.get(bb), m.i32.mul(f.get(R), f.get(C)))),
      f.for(r0, I(0), f.at(R), BLOCK, [
        f.set(rEnd, min(m.i32.add(f.get(r0), I(BLOCK)), f.at(R))),
        f.for(c0, I(0), f.at(C), BLOCK, [
          f.set(cEnd, min(m.i32.add(f.get(c0), I(BLOCK)), f.at(C))),
          f.for(r, f.get(r0), f.at(rEnd), 1, [
            f.for(col, f.get(c0), f.at(cEnd), 1, [
              m.i32.store(0, 4, at(c.out(), m.i32.add(m.i32.mul(f.get(col), f.get(R)), f.get(r))), m.i32.load(0, 4, at(c.in(0), m.i32.add(m.i32.mul(f.get(r), f.get(C)), f.get(col))))),
            ]),
          ]),
        ]),
      ]),
    ]),
  ];
}
