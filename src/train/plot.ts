/**
 * The loss curve as one self-contained SVG: training loss per step as a line, validation loss as
 * points joined by a thinner line, linear axes with round-numbered ticks (1, 2 or 5 × 10^k),
 * light grid lines, axis titles and a legend. No script, no external font or style.
 *
 * A long run keeps the picture small: past two points per pixel column, each column keeps its
 * lowest and highest training loss (so spikes stay visible). Non-finite losses break the line.
 */
import { writeAtomic } from '../formats/file.js';

export interface LossPoint {
  step: number;
  loss: number;
}

export interface PlotOptions {
  title?: string;
  /** pixels; 720 × 420 unless given */
  width?: number;
  height?: number;
}

const TRAIN_COLOR = '#1f77b4';
const VAL_COLOR = '#ff7f0e';
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const MARGIN = { left: 64, right: 24, top: 44, bottom: 52 };

// ─── ticks ──────────────────────────────────────────────────────────────────────────────────

/** The round step (1, 2 or 5 × 10^k) nearest above `raw`, at least `min`. */
function niceStep(raw: number, min: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p - 1e-9; // a range of 0.06 over 6 ticks is 0.01, not 0.010000000000000009
  return Math.max(min, (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p);
}

export interface Axis {
  /** the domain shown, widened to whole ticks */
  lo: number;
  hi: number;
  ticks: number[];
  /** decimals the tick labels need */
  decimals: number;
}

/** About `target` round ticks covering [lo, hi]; `integer` keeps the tick step ≥ 1 (steps are whole). */
export function niceAxis(lo: number, hi: number, target = 6, integer = false): Axis {
  if (!(hi > lo)) [lo, hi] = [lo - (Math.abs(lo) * 0.1 || 1), hi + (Math.abs(hi) * 0.1 || 1)];
  const step = niceStep((hi - lo) / target, integer ? 1 : 0);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, ticks, decimals };
}

/** 0.5, 12, 1,500, 20k: thousands get a k once the ticks are whole thousands. */
function tickLabel(v: number, axis: Axis): string {
  const step = axis.ticks.length > 1 ? axis.ticks[1]! - axis.ticks[0]! : 1;
  if (Math.abs(v) >= 10000 && step % 1000 === 0) return `${v / 1000}k`;
  const s = v.toFixed(axis.decimals);
  return axis.decimals === 0 ? s.replace(/\B(?=(\d{3})+(?!\d))/g, ',') : s;
}

// ─── drawing ────────────────────────────────────────────────────────────────────────────────

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number): string => String(Math.round(x * 100) / 100);

/** The training points to draw: each run of finite points, thinned to the lowest and highest per pixel column. */
function trainSegments(points: readonly LossPoint[], px: (step: number) => number, columns: number): LossPoint[][] {
  const runs: LossPoint[][] = [[]];
  for (const p of points) {
    if (Number.isFinite(p.loss) && Number.isFinite(p.step)) runs[runs.length - 1]!.push(p);
    else if (runs[runs.length - 1]!.length) runs.push([]);
  }
  return runs
    .filter((r) => r.length > 0)
    .map((run) => {
      if (run.length <= 2 * columns) return run;
      const out: LossPoint[] = [];
      let col = NaN;
      let lo: LossPoint | undefined;
      let hi: LossPoint | undefined;
      const flush = (): void => {
        if (lo && hi) out.push(...(lo === hi ? [lo] : lo.step < hi.step ? [lo, hi] : [hi, lo]));
      };
      for (const p of run) {
        const c = Math.floor(px(p.step));
        if (c !== col) {
          flush();
          col = c;
          lo = hi = p;
        } else {
          if (p.loss < lo!.loss) lo = p;
          if (p.loss > hi!.loss) hi = p;
        }
      }
      flush();
      return out;
    });
}

/** The picture, as SVG text. */
export function lossPlotSvg(train: readonly LossPoint[], val: readonly LossPoint[], opts: PlotOptions = {}): string {
  const W = opts.width ?? 720;
  const H = opts.height ?? 420;
  const x0 = MARGIN.left;
  const x1 = W - MARGIN.right;
  const y0 = H - MARGIN.bottom;
  const y1 = MARGIN.top;

  const finite = [...train, ...val].filter((p) => Number.isFinite(p.loss) && Number.isFinite(p.step));
  const empty = finite.length === 0;
  let [sLo, sHi, yLo, yHi] = empty ? [0, 1, 0, 1] : [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of finite) {
    sLo = Math.min(sLo, p.step);
    sHi = Math.max(sHi, p.step);
    yLo = Math.min(yLo, p.loss);
    yHi = Math.max(yHi, p.loss);
  }
  // Steps from 0 (where a run starts), at least one step wide.
  sLo = Math.min(0, sLo);
  const xAxis = niceAxis(sLo, Math.max(sHi, sLo + 1), 8, true);
  const pad = empty ? 0 : (yHi - yLo) * 0.04;
  const yAxis = niceAxis(yLo - pad, yHi + pad, 6);
  const px = (s: number): number => x0 + ((s - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (x1 - x0);
  const py = (l: number): number => y0 - ((l - yAxis.lo) / (yAxis.hi - yAxis.lo)) * (y0 - y1);

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${esc(FONT)}" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${num((x0 + x1) / 2)}" y="26" text-anchor="middle" font-size="15" font-weight="600" fill="#222">${esc(opts.title ?? 'loss')}</text>`);

  // grid and ticks
  out.push('<g stroke="#e6e6e6" stroke-width="1">');
  for (const t of xAxis.ticks) out.push(`<line x1="${num(px(t))}" y1="${y1}" x2="${num(px(t))}" y2="${y0}"/>`);
  for (const t of yAxis.ticks) out.push(`<line x1="${x0}" y1="${num(py(t))}" x2="${x1}" y2="${num(py(t))}"/>`);
  out.push('</g>');
  out.push(`<g fill="#444" stroke="none">`);
  for (const t of xAxis.ticks) out.push(`<text x="${num(px(t))}" y="${y0 + 18}" text-anchor="middle">${tickLabel(t, xAxis)}</text>`);
  for (const t of yAxis.ticks) out.push(`<text x="${x0 - 8}" y="${num(py(t) + 4)}" text-anchor="end">${tickLabel(t, yAxis)}</text>`);
  out.push('</g>');
  out.push(`<g stroke="#444" stroke-width="1">`);
  for (const t of xAxis.ticks) out.push(`<line x1="${num(px(t))}" y1="${y0}" x2="${num(px(t))}" y2="${y0 + 5}"/>`);
  for (const t of yAxis.ticks) out.push(`<line x1="${x0 - 5}" y1="${num(py(t))}" x2="${x0}" y2="${num(py(t))}"/>`);
  out.push(`<polyline fill="none" points="${x0},${y1} ${x0},${y0} ${x1},${y0}"/>`);
  out.push('</g>');
  out.push(`<text x="${num((x0 + x1) / 2)}" y="${H - 12}" text-anchor="middle" fill="#222">step</text>`);
  out.push(`<text transform="translate(18 ${num((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle" fill="#222">loss</text>`);

  // the data
  const polyline = (pts: readonly LossPoint[], color: string, width: number): string =>
    `<polyline fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round" stroke-linecap="round" points="${pts.map((p) => `${num(px(p.step))},${num(py(p.loss))}`).join(' ')}"/>`;
  for (const seg of trainSegments(train, px, x1 - x0)) out.push(seg.length === 1 ? `<circle cx="${num(px(seg[0]!.step))}" cy="${num(py(seg[0]!.loss))}" r="2.5" fill="${TRAIN_COLOR}"/>` : polyline(seg, TRAIN_COLOR, 1.5));
  const vals = val.filter((p) => Number.isFinite(p.loss) && Number.isFinite(p.step));
  if (vals.length > 1) out.push(polyline(vals, VAL_COLOR, 1));
  for (const p of vals) out.push(`<circle cx="${num(px(p.step))}" cy="${num(py(p.loss))}" r="3.5" fill="${VAL_COLOR}" stroke="#ffffff" stroke-width="1"/>`);
  if (empty) out.push(`<text x="${num((x0 + x1) / 2)}" y="${num((y0 + y1) / 2)}" text-anchor="middle" fill="#888">no losses yet</text>`);

  // legend, top right inside the plot
  const entries: [string, string, boolean][] = [['train', TRAIN_COLOR, false]];
  if (vals.length) entries.push(['validation', VAL_COLOR, true]);
  const lw = 112;
  const lx = x1 - lw - 10;
  const ly = y1 + 10;
  out.push(`<g>`);
  out.push(`<rect x="${lx}" y="${ly}" width="${lw}" height="${10 + 18 * entries.length}" rx="3" fill="#ffffff" fill-opacity="0.9" stroke="#cccccc"/>`);
  entries.forEach(([label, color, dot], i) => {
    const cy = ly + 14 + 18 * i;
    out.push(dot ? `<circle cx="${lx + 21}" cy="${cy}" r="3.5" fill="${color}"/>` : `<line x1="${lx + 10}" y1="${cy}" x2="${lx + 32}" y2="${cy}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${lx + 40}" y="${cy + 4}" fill="#222">${label}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Write the picture to `path`, whole or not at all. */
export function writeLossPlot(path: string, train: readonly LossPoint[], val: readonly LossPoint[], opts: PlotOptions = {}): void {
  const bytes = Buffer.from(lossPlotSvg(train, val, opts), 'utf8');
  writeAtomic(path, (put) => put(bytes));
}
