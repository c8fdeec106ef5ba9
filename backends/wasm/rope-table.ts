/**
 * cos/sin tables for rope and rope_qk, so that a step costs no trigonometry (the kernels used to
 * call the host's Math.pow/cos/sin for every pair of every row — on a decode step, for every
 * cached key again). One table per (base, D): f64 pairs (cos, sin) of p·base^(−2i/D) laid out
 * [p][i], the interpreter's formula in doubles, so results do not change. The host keeps them
 * between the static region and the run-time values, and grows one (doubling) when a run's
 * positions pass its rows; the module finds each table through its slot-table word. Negative
 * positions (possible in random graphs, never in a model) are computed directly by the kernels.
 */
import { type Dim, evalDim } from '../../graph/dim.js';
import type { Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import { ropeQkForm } from '../js/kernels/fused-rope-qk.js';

/** Slot-table ids of the tables: ROPE_ID0, ROPE_ID0 − 1, … (no node has a negative id; −1 is the scratch). */
export const ROPE_ID0 = -2;

export interface RopeTable {
  readonly base: number;
  readonly D: number;
  readonly slot: number;
  /** The rows each use needs: positions offset … offset + len − 1. */
  readonly uses: readonly { readonly offset: Dim; readonly len: Dim }[];
}

export const ropeKey = (base: number, D: number): string => `${base}/${D}`;

/** The (base, D, offset, len) of every rotation the kernels of these nodes make. */
export function ropeUses(n: Node, types: readonly { shape: readonly Dim[] }[]): { base: number; D: number; offset: Dim; len: Dim }[] {
  if (n.op === 'rope') {
    const [S, , D] = types[0]!.shape;
    return [{ base: n.attrs['base'] as number, D: D as number, offset: n.attrs['offset'] as Dim, len: S! }];
  }
  if (n.op !== 'fused' || n.attrs['pattern'] !== 'rope_qk') return [];
  const form = ropeQkForm(n.attrs['body'] as FusedBody);
  if (!form) return [];
  return [form.q, form.k].filter((side) => side.rope).map((side) => ({ base: side.base, D: form.D, offset: side.offset, len: types[side.arg]!.shape[0]! }));
}

/** The host's side: rows per table, written into memory when they grow. */
export class RopeTables {
  private rows: number[];
  constructor(private readonly tables: readonly RopeTable[]) {
    this.rows = tables.map(() => 0);
  }

  /** Bytes all tables take at their current rows (after `fit`). */
  get bytes(): number {
    return this.tables.reduce((s, t, i) => s + align(this.rows[i]! * (t.D / 2) * 16), 0);
  }

  /** Grow the tables to the positions of this run; true when any grew (they must be rewritten). */
  fit(env: Record<string, number>): boolean {
    let grew = false;
    this.tables.forEach((t, i) => {
      const need = Math.max(0, ...t.uses.map((u) => evalDim(u.offset, env) + evalDim(u.len, env)));
      if (need > this.rows[i]!) {
        this.rows[i] = Math.max(need, 64, 2 * this.rows[i]!);
        grew = true;
      }
    });
    return grew;
  }

  /** Place the tables from byte `at` on: their slot words, and (when `write`) their values. */
  place(at: number, words: Int32Array, memory: ArrayBuffer, write: boolean): void {
    this.tables.forEach((t, i) => {
      words[t.slot] = at;
      const h = t.D / 2;
      const rows = this.rows[i]!;
      if (write) {
        const v = new Float64Array(memory, at, rows * h * 2);
        for (let p = 0; p < rows; p++)
          for (let k = 0; k < h; k++) {
            const a = p * Math.pow(t.base, (-2 * k) / t.D);
            v[(p * h + k) * 2] = Math.cos(a);
            v[(p * h + k) * 2 + 1] = Math.sin(a);
          }
      }
      at += align(rows * h * 16);
    });
  }
}

const align = (x: number) => Math.ceil(x / 64) * 64;
