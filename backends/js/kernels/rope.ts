/**
 * rope: rotary position embedding of x[S, H, D]. Angles come from a table of cos/sin per
 * (position, pair), computed with the interpreter's formula p·base^(−2i/D) in doubles and grown
 * on demand, so a decode step costs no trigonometry. The same table serves the fused rope_qk
 * kernel. Negative positions (never made by a model, possible in a random graph) are computed
 * directly.
 */
import type { Dim } from '../../../graph/dim.js';
import { jsNum } from '../codegen.js';
import type { Kernel, KernelCtx } from './kernel.js';

export const ROPE_TABLE = `/** cos/sin of p·base^(−2i/D) for positions 0 ≤ p < rows and pairs i < D/2, as [p][i]; cached per (base, D). */
const _ropeTables = new Map();
function ropeTable(base, D, rows) {
  const key = base + '/' + D;
  let t = _ropeTables.get(key);
  if (t === undefined || t.rows < rows) {
    const n = Math.max(rows, t === undefined ? 64 : 2 * t.rows), h = D / 2;
    const cos = new Float64Array(n * h), sin = new Float64Array(n * h);
    for (let p = 0; p < n; p++)
      for (let i = 0; i < h; i++) {
        const a = p * Math.pow(base, (-2 * i) / D);
        cos[p * h + i] = Math.cos(a);
        sin[p * h + i] = Math.sin(a);
      }
    t = { rows: n, cos, sin };
    _ropeTables.set(key, t);
  }
  return t;
}`;

export const ROPE_ROW = `/** Rotate one head row x[xo … xo + D) at position p into y[yo …] (y may be x). */
function ropeRow(x, xo, y, yo, D, p, base, half, tab) {
  const h = D / 2;
  for (let i = 0; i < h; i++) {
    let c, s;
    if (p >= 0) {
      c = tab.cos[p * h + i];
      s = tab.sin[p * h + i];
    } else {
      const t = p * Math.pow(base, (-2 * i) / D);
      c = Math.cos(t);
      s = Math.sin(t);
    }
    const ia = half ? i : 2 * i, ib = half ? i + h : 2 * i + 1;
    const a = x[xo + ia], b = x[xo + ib];
    y[yo + ia] = a * c - b * s;
    y[yo + ib] = a * s + b * c;
  }
}`;

const ROPE = `/** x[S, H, D] rotated, token s at position off + s. */
function ropeApply(x, out, S, H, D, off, base, half) {
  const tab = ropeTable(base, D, Math.max(0, off + S));
  for (let s = 0; s < S; s++)
    for (let h = 0; h < H; h++) ropeRow(x, (s * H + h) * D, out, (s * H + h) * D, D, off + s, base, half, tab);
}`;

/** Declare the table and row helpers; returns the row rotator's name. */
export function ropeHelpers(c: KernelCtx): { table: string; row: string } {
  return { table: c.helper('ropeTable', ROPE_TABLE), row: c.helper('ropeRow', ROPE_ROW) };
}

export const ropeKernel: Kernel = (c) => {
  ropeHelpers(c);
  const fn = c.helper('ropeApply', ROPE);
  const [S, H, D] = c.dims(c.types[0]!.shape) as [string, string, string];
  const a = c.node.attrs;
  return `${fn}(${c.ins[0]}, ${c.out}, ${S}, ${H}, ${D}, ${c.dim(a['offset'] as Dim)}, ${jsNum(a['base'] as number)}, ${a['layout'] === 'half'});`;
};
