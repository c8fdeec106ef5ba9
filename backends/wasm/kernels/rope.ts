/**
 * rope on x[S, H, D]: every head row of token s rotated at position offset + s by the shared
 * rope_row helper (cos/sin from the (base, D) table, f64 arithmetic, as in rope_qk).
 */
import type { Dim } from '../../../graph/dim.js';
import { buildRopeRow } from './fused-rope-qk.js';
import type { WasmKernel } from './kernel.js';

export const ropeKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const [S, H, D] = c.types[0]!.shape as [Dim, Dim, number];
  const half = c.node.attrs['layout'] === 'half';
  const base = c.node.attrs['base'] as number;
  const row = c.helper('rope_row', () => buildRopeRow(c, 'rope_row'));
  const [s, h] = [f.local(b.i32), f.local(b.i32)];
  const at = (base0: () => number) => m.i32.add(base0(), m.i32.shl(m.i32.mul(m.i32.add(m.i32.mul(f.get(s), c.dim(H)), f.get(h)), m.i32.const(D)), m.i32.const(2)));
  return [
    f.for(s, m.i32.const(0), () => c.dim(S), 1, [
      f.for(h, m.i32.const(0), () => c.dim(H), 1, [
        m.call(row, [at(() => c.in(0)), at(() => c.out()), m.i32.const(D), m.i32.add(c.dim(c.node.attrs['offset'] as Dim), f.get(s)), m.f64.const(base), m.i32.const(half ? 1 : 0), c.ropeTable(base, D)], b.none),
      ]),
    ]),
  ];
};
