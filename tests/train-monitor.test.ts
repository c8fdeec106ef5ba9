/**
 * What a training run leaves to be watched: TensorBoard event files (read back by a reader written
 * here, independently of the writer), the loss-curve SVG, the JSONL metrics log and the progress line.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventWriter, crc32c, encodeRecord, eventFileName, maskedCrc32c, scalarsEvent } from '../src/train/tfevents.js';
import { lossPlotSvg, niceAxis, writeLossPlot, type LossPoint } from '../src/train/plot.js';
import { MetricsLog, evalLine, formatDuration, formatProgress, readMetrics, stepLine, truncateMetrics, type StepRecord } from '../src/train/metrics.js';
import { thrown } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-train-monitor-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = (): string => mkdtempSync(join(root, `d${dirs++}-`));

// ─── an independent TFRecord + protobuf reader ─────────────────────────────────────────────

/** CRC-32C bit by bit (no table), from the polynomial's definition. */
function crcBitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of data) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
const mask = (c: number): number => Number((((BigInt(c) >> 15n) | (BigInt(c) << 17n)) + 0xa282ead8n) & 0xffffffffn);

/** The records of a TFRecord file, each CRC checked; `torn` when the file ends inside one. */
function readRecords(bytes: Uint8Array): { records: Uint8Array[]; torn: boolean } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) return { records, torn: true };
    const len = Number(dv.getBigUint64(at, true));
    expect(dv.getUint32(at + 8, true)).toBe(mask(crcBitwise(bytes.subarray(at, at + 8))));
    if (at + 12 + len + 4 > bytes.length) return { records, torn: true };
    const data = bytes.subarray(at + 12, at + 12 + len);
    expect(dv.getUint32(at + 12 + len, true)).toBe(mask(crcBitwise(data)));
    records.push(data);
    at += 12 + len + 4;
  }
  return { records, torn: false };
}

type Field = { field: number; wire: number; value: bigint | Uint8Array };

/** A protobuf message's fields, in order (varints as bigints, everything else as its bytes). */
function fields(b: Uint8Array): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = b[i++]!;
      v |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return v;
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const wire = key & 7;
    const field = key >>> 3;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1) out.push({ field, wire, value: b.subarray(i, (i += 8)) });
    else if (wire === 5) out.push({ field, wire, value: b.subarray(i, (i += 4)) });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ field, wire, value: b.subarray(i, (i += n)) });
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}

interface Ev {
  wallTime: number;
  step: number;
  fileVersion?: string;
  writer?: string;
  values?: { tag: string; value: number }[];
  sessionStatus?: number;
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const f64 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);

/** An Event, by event.proto's and summary.proto's field numbers. */
function decodeEvent(b: Uint8Array): Ev {
  const e: Ev = { wallTime: NaN, step: 0 };
  for (const f of fields(b)) {
    if (f.field === 1 && f.wire === 1) e.wallTime = f64(f.value as Uint8Array);
    else if (f.field === 2 && f.wire === 0) e.step = Number(f.value);
    else if (f.field === 3 && f.wire === 2) e.fileVersion = text(f.value as Uint8Array);
    else if (f.field === 5 && f.wire === 2) {
      e.values = [];
      for (const v of fields(f.value as Uint8Array)) {
        expect(v.field).toBe(1); // Summary.value
        const val = { tag: '', value: NaN };
        for (const g of fields(v.value as Uint8Array)) {
          if (g.field === 1 && g.wire === 2) val.tag = text(g.value as Uint8Array);
          else if (g.field === 2 && g.wire === 5) val.value = f32(g.value as Uint8Array);
          else throw new Error(`Summary.Value field ${g.field}`);
        }
        e.values.push(val);
      }
    } else if (f.field === 7 && f.wire === 2) e.sessionStatus = Number(fields(f.value as Uint8Array).find((g) => g.field === 1)!.value);
    else if (f.field === 10 && f.wire === 2) e.writer = text(fields(f.value as Uint8Array).find((g) => g.field === 1)!.value as Uint8Array);
    else throw new Error(`Event field ${f.field} (wire ${f.wire})`);
  }
  return e;
}

const readEvents = (path: string): { events: Ev[]; torn: boolean } => {
  const { records, torn } = readRecords(readFileSync(path));
  return { events: records.map(decodeEvent), torn };
};

// ─── TensorBoard event files ────────────────────────────────────────────────────────────────

describe('crc32c', () => {
  it('matches the standard test vectors (RFC 3720 B.4 and "123456789")', () => {
    const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with a bitwise CRC, continues across chunks, and masks as TFRecord does', () => {
    const b = Uint8Array.from({ length: 1000 }, (_, i) => (i * 131 + 7) & 0xff);
    expect(crc32c(b)).toBe(crcBitwise(b));
    expect(crc32c(b.subarray(300), crc32c(b.subarray(0, 300)))).toBe(crc32c(b));
    expect(maskedCrc32c(b)).toBe(mask(crcBitwise(b)));
  });
});

describe('event files', () => {
  it('encodes a scalar Event with event.proto’s and summary.proto’s field numbers', () => {
    const bytes = Array.from(scalarsEvent(2, 3, { loss: 1.5 }));
    const hex = bytes.map((x) => x.toString(16).padStart(2, '0')).join(' ');
    // 09 wall_time (1, fixed64) = 2.0 · 10 step (2, varint) = 3 · 2a summary (5, bytes) · 0a value (1) · 0a tag (1) "loss" · 15 simple_value (2, fixed32) = 1.5
    expect(hex).toBe('09 00 00 00 00 00 00 00 40 10 03 2a 0d 0a 0b 0a 04 6c 6f 73 73 15 00 00 c0 3f');
  });

  it('writes a file TensorBoard reads: version first, then scalars per step, every record checked', () => {
    const dir = freshDir();
    let t = 1700000000.25;
    const w = EventWriter.create(dir, { host: 'box/1 a', now: () => (t += 1) });
    expect(w.path).toBe(join(dir, 'events.out.tfevents.1700000001.box_1_a'));
    w.scalars(0, { 'train/loss': 10.5, 'train/lr': 3e-4 });
    w.scalar('val/loss', 9.25, 1);
    w.scalars(2 ** 40 + 1, { 'train/loss': Number.NaN });
    w.sessionStart(7);
    w.resumeAfter(7); // TensorBoard keeps step 7 (steps below the START's), drops 8 on
    w.close();
    const { events, torn } = readEvents(w.path);
    expect(torn).toBe(false);
    expect(events[0]).toEqual({ wallTime: 1700000001.25, step: 0, fileVersion: 'brain.Event:2', writer: 'kiln' });
    expect(events[1]).toEqual({ wallTime: 1700000002.25, step: 0, values: [{ tag: 'train/loss', value: 10.5 }, { tag: 'train/lr', value: Math.fround(3e-4) }] });
    expect(events[2]).toEqual({ wallTime: 1700000003.25, step: 1, values: [{ tag: 'val/loss', value: 9.25 }] });
    expect(events[3]!.step).toBe(2 ** 40 + 1);
    expect(events[3]!.values![0]!.value).toBeNaN();
    expect(events[4]).toEqual({ wallTime: 1700000005.25, step: 7, sessionStatus: 1 });
    expect(events[5]).toEqual({ wallTime: 1700000006.25, step: 8, sessionStatus: 1 });
  });

  it('each record is on disk when written; a torn last record loses only itself', () => {
    const dir = freshDir();
    const w = EventWriter.create(dir, { host: 'h', now: () => 5 });
    w.scalars(1, { loss: 2 });
    expect(readEvents(w.path).events.length).toBe(2); // before close
    const rec = encodeRecord(scalarsEvent(6, 2, { loss: 1 }));
    appendFileSync(w.path, rec.subarray(0, rec.length - 3)); // a crash mid-write
    const { events, torn } = readEvents(w.path);
    expect(torn).toBe(true);
    expect(events.map((e) => e.step)).toEqual([0, 1]);
    w.close();
  });

  it('never reuses a file: a second writer in the same second gets a suffix', () => {
    const dir = freshDir();
    const a = EventWriter.create(dir, { host: 'h', now: () => 100 });
    const b = EventWriter.create(dir, { host: 'h', now: () => 100 });
    expect(b.path).toBe(`${a.path}.1`);
    a.close();
    b.close();
    expect(eventFileName(1.9, '')).toBe('events.out.tfevents.1.localhost');
  });

  it('a folder that is not there is one K1016 line', () => {
    const missing = join(root, 'no', 'such');
    const e = thrown(() => EventWriter.create(missing, { host: 'h', now: () => 1 }));
    expect(e.code).toBe('K1016');
    expect(e.message).toBe(`cannot write '${join(missing, 'events.out.tfevents.1.h')}': its folder '${missing}' does not exist`);
  });
});

// ─── the loss plot ──────────────────────────────────────────────────────────────────────────

/** Every tag closed in order (enough to catch broken markup), and the element names met. */
function checkMarkup(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)\b[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    if (close) expect(stack.pop()).toBe(name);
    else {
      names.push(name!);
      if (!selfClose) stack.push(name!);
    }
  }
  expect(stack).toEqual([]);
  expect(svg.replace(/<[^>]*>/g, '')).not.toMatch(/[<>]|&(?!(amp|lt|gt|quot);)/);
  return names;
}

const curve = (n: number, f: (s: number) => number): LossPoint[] => Array.from({ length: n }, (_, s) => ({ step: s, loss: f(s) }));

describe('loss plot', () => {
  it('round ticks: 1, 2 or 5 × 10^k covering the data; whole steps on the step axis', () => {
    expect(niceAxis(0, 10.37).ticks).toEqual([0, 2, 4, 6, 8, 10, 12]);
    expect(niceAxis(1.23, 1.29, 6)).toEqual({ lo: 1.23, hi: 1.29, ticks: [1.23, 1.24, 1.25, 1.26, 1.27, 1.28, 1.29], decimals: 2 });
    expect(niceAxis(0, 3, 8, true).ticks).toEqual([0, 1, 2, 3]);
    expect(niceAxis(0, 49999, 8, true).ticks).toEqual([0, 10000, 20000, 30000, 40000, 50000]);
    expect(niceAxis(5, 5).ticks).toEqual([4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]); // one value: ±10% around it
  });

  it('draws the train line, the validation points, axes, labels and a legend', () => {
    const train = curve(200, (s) => 2 + 8 * Math.exp(-s / 40));
    const val = [0, 50, 100, 150, 199].map((s) => ({ step: s, loss: 2.1 + 8 * Math.exp(-s / 40) }));
    const svg = lossPlotSvg(train, val, { title: 'run <1> & co' });
    const names = checkMarkup(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="720" height="420"')).toBe(true);
    expect(svg).toContain('>run &lt;1&gt; &amp; co</text>');
    expect(names.filter((n) => n === 'circle').length).toBe(5 + 1); // and the legend's
    const lines = [...svg.matchAll(/<polyline[^>]*stroke="#1f77b4"[^>]*points="([^"]*)"/g)];
    expect(lines.length).toBe(1);
    expect(lines[0]![1]!.split(' ').length).toBe(200);
    for (const label of ['>step<', '>loss<', '>train<', '>validation<', '>0<', '>200<', '>10<']) expect(svg).toContain(label);
  });

  it('thins a long run to the lowest and highest loss per pixel column, keeping spikes', () => {
    const train = curve(100_000, (s) => (s === 54_321 ? 50 : 3 + Math.sin(s)));
    const svg = lossPlotSvg(train, []);
    checkMarkup(svg);
    const pts = [...svg.matchAll(/<polyline[^>]*stroke="#1f77b4"[^>]*points="([^"]*)"/g)].reduce((n, m) => n + m[1]!.split(' ').length, 0);
    expect(pts).toBeLessThanOrEqual(2 * 632);
    expect(svg.length).toBeLessThan(40_000);
    expect(svg).toContain('>50<'); // the spike sets the top of the axis
  });

  it('breaks the line at a non-finite loss and still draws with no data', () => {
    const train = [1, 2, Number.NaN, 3, 4].map((loss, step) => ({ step, loss }));
    expect([...lossPlotSvg(train, []).matchAll(/<polyline[^>]*stroke="#1f77b4"/g)].length).toBe(2);
    const empty = lossPlotSvg([], []);
    checkMarkup(empty);
    expect(empty).toContain('no losses yet');
  });

  it('writes the file atomically', () => {
    const dir = freshDir();
    const p = join(dir, 'loss.svg');
    writeLossPlot(p, curve(10, (s) => 10 - s), []);
    writeLossPlot(p, curve(20, (s) => 10 - s / 2), [{ step: 19, loss: 1 }]);
    expect(readdirSync(dir)).toEqual(['loss.svg']);
    expect(readFileSync(p, 'utf8')).toBe(lossPlotSvg(curve(20, (s) => 10 - s / 2), [{ step: 19, loss: 1 }]));
  });
});

// ─── the metrics log and the progress line ─────────────────────────────────────────────────

const record = (step: number): StepRecord => ({ step, loss: 10 - step / 4, lr: 1e-3 * (step + 1), grad_norm: 1 / (step + 1), tokens: 512 * (step + 1), tokens_per_s: 2048 });

/** A run of `steps` steps logging every step and evaluating every 4th, stopping early after `crashAfter`. */
function run(path: string, log: MetricsLog, from: number, steps: number, crashAfter = Infinity): void {
  for (let s = from; s < steps; s++) {
    log.step(record(s));
    if (s % 4 === 3) log.eval(s, 9 - s / 4);
    if (s === crashAfter) {
      appendFileSync(path, '{"step":'); // a line the crash cut short
      break;
    }
  }
  log.close();
}

describe('metrics log', () => {
  it('writes one JSON line per step, keys in order, and eval lines with the perplexity', () => {
    expect(stepLine({ ...record(2), extra: 0.5 })).toBe('{"step":2,"loss":9.5,"lr":0.003,"grad_norm":0.3333333333333333,"tokens":1536,"tokens_per_s":2048,"extra":0.5}\n');
    expect(stepLine({ ...record(0), loss: Number.NaN, grad_norm: Number.POSITIVE_INFINITY })).toBe('{"step":0,"loss":"NaN","lr":0.001,"grad_norm":"Infinity","tokens":512,"tokens_per_s":2048}\n');
    expect(evalLine(3, Math.log(20))).toBe(`{"step":3,"val_loss":${Math.log(20)},"val_ppl":${Math.exp(Math.log(20))}}\n`);
  });

  it('appends and reads back, steps and evaluations apart', () => {
    const p = join(freshDir(), 'metrics.jsonl');
    writeFileSync(p, 'an old run\n');
    const log = MetricsLog.create(p); // replaces what was there
    log.step({ ...record(0), loss: Number.NaN });
    log.eval(0, 2);
    expect(readFileSync(p, 'utf8').split('\n').length).toBe(3); // on disk before close
    log.close();
    const { steps, evals } = readMetrics(p);
    expect(steps.length).toBe(1);
    expect(steps[0]!.loss).toBeNaN();
    expect(evals).toEqual([{ step: 0, val_loss: 2, val_ppl: Math.exp(2) }]);
  });

  it('a run resumed from its checkpoint leaves the log an uninterrupted run leaves', () => {
    const dir = freshDir();
    const straight = join(dir, 'straight.jsonl');
    run(straight, MetricsLog.create(straight), 0, 12);
    const resumed = join(dir, 'resumed.jsonl');
    run(resumed, MetricsLog.create(resumed), 0, 12, 9); // crashed after step 9, mid-line
    run(resumed, MetricsLog.resume(resumed, 7), 8, 12); // the checkpoint was after step 7
    expect(readFileSync(resumed, 'utf8')).toBe(readFileSync(straight, 'utf8'));
  });

  it('truncation keeps whole lines up to the step, and refuses a log it cannot read (K1025)', () => {
    const dir = freshDir();
    const p = join(dir, 'm.jsonl');
    run(p, MetricsLog.create(p), 0, 8);
    expect(truncateMetrics(p, 3)).toBe(5); // steps 0–3 and the eval at 3
    expect(readMetrics(p).steps.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    expect(truncateMetrics(join(dir, 'none.jsonl'), 3)).toBe(0);
    writeFileSync(p, `${stepLine(record(0))}not json\n${stepLine(record(1))}`);
    const e = thrown(() => truncateMetrics(p, 5));
    expect(e.code).toBe('K1025');
    expect(e.message).toBe(`${p}: line 2 is not a metrics record, so this log cannot be resumed (move it away to start a new one)`);
    expect(readdirSync(dir).sort()).toEqual(['m.jsonl']);
  });

  it('formats the progress line and durations', () => {
    expect(formatProgress({ done: 120, steps: 1000, loss: 2.34567, lr: 4.8e-4, tokensPerSecond: 5012.4, secondsPerStep: 0.823 })).toBe('step  120/1000  loss 2.3457  lr 4.80e-4  5,012 tok/s  ETA 12m04s');
    expect(formatProgress({ done: 1, steps: 3, loss: Number.NaN, lr: 1, tokensPerSecond: Number.NaN })).toBe('step 1/3  loss NaN  lr 1.00e0  ? tok/s');
    expect([0, 59.4, 60, 3599, 3600, 86399, 90000, -1].map(formatDuration)).toEqual(['0s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '1d01h', '?']);
  });
});
