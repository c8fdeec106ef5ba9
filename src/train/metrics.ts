/**
 * The training log: a JSONL file, one line per step and one per evaluation, each appended and
 * handed to the OS as it is made (a crash loses at most the line being written).
 *
 *   {"step":12,"loss":4.1875,"lr":0.0003,"grad_norm":0.91,"tokens":24576,"tokens_per_s":5012.5}
 *   {"step":12,"val_loss":4.25,"val_ppl":70.1}
 *
 * Keys come in that order (a step line's extra fields after them); a non-finite number, which
 * JSON has no word for, is written as the string "NaN", "Infinity" or "-Infinity", as kiln's
 * graph JSON writes them. A resumed run first cuts the log back to its checkpoint's last step
 * (`MetricsLog.resume`), so its log is the uninterrupted run's — but for `tokens_per_s`, which
 * is a measurement.
 *
 * Also here: the one-line progress report the trainer prints.
 */
import { readFileSync } from 'node:fs';
import { InternalError, KilnError } from '../../graph/errors.js';
import { AppendFile, writeAtomic } from '../formats/file.js';

export interface StepRecord {
  step: number;
  loss: number;
  lr: number;
  /** the global gradient norm before clipping */
  grad_norm: number;
  /** tokens trained on so far, this step's included */
  tokens: number;
  tokens_per_s: number;
  /** anything else the trainer measures (a number each) */
  [extra: string]: number;
}

export interface EvalRecord {
  step: number;
  val_loss: number;
  val_ppl: number;
}

const STEP_KEYS = ['step', 'loss', 'lr', 'grad_norm', 'tokens', 'tokens_per_s'] as const;

const jsonNumber = (x: number): number | string => (Number.isFinite(x) ? x : String(x));
const fromJson = (x: unknown): number => (typeof x === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(x) ? Number(x) : (x as number));

/** A step record as its log line (with the newline). */
export function stepLine(r: StepRecord): string {
  const o: Record<string, number | string> = {};
  for (const k of STEP_KEYS) {
    if (typeof r[k] !== 'number') throw new InternalError(`metrics: step record without a number '${k}'`);
    o[k] = jsonNumber(r[k]);
  }
  for (const [k, v] of Object.entries(r)) if (!(k in o)) o[k] = jsonNumber(v);
  return JSON.stringify(o) + '\n';
}

/** An evaluation's log line; the perplexity is e^val_loss. */
export function evalLine(step: number, valLoss: number): string {
  return JSON.stringify({ step, val_loss: jsonNumber(valLoss), val_ppl: jsonNumber(Math.exp(valLoss)) }) + '\n';
}

/** Each complete line of a log with its parsed record; a torn last line (no newline) is left out. */
function logLines(path: string, text: string): { line: string; rec: Record<string, number> }[] {
  const out: { line: string; rec: Record<string, number> }[] = [];
  const parts = text.split('\n');
  parts.pop(); // after the last newline: empty, or a line the crash cut short
  parts.forEach((line, i) => {
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = undefined;
    }
    const r = rec as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null || typeof r['step'] !== 'number')
      throw new KilnError('K1025', `${path}: line ${i + 1} is not a metrics record, so this log cannot be resumed (move it away to start a new one)`);
    const parsed: Record<string, number> = {};
    for (const [k, v] of Object.entries(r)) parsed[k] = fromJson(v);
    out.push({ line: line + '\n', rec: parsed });
  });
  return out;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('K1025', `${path}: cannot read the metrics log: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Every record of a log, steps and evaluations apart (a missing file has none). */
export function readMetrics(path: string): { steps: StepRecord[]; evals: EvalRecord[] } {
  const steps: StepRecord[] = [];
  const evals: EvalRecord[] = [];
  for (const { rec } of logLines(path, readText(path) ?? '')) {
    if ('val_loss' in rec) evals.push(rec as unknown as EvalRecord);
    else steps.push(rec as StepRecord);
  }
  return { steps, evals };
}

/**
 * Cut a log back to the lines of steps ≤ `lastStep`: everything from the first line past it on
 * goes, and so does a torn last line. The file is replaced atomically; the lines kept are its
 * own bytes. Returns how many lines were kept. A missing file stays missing.
 */
export function truncateMetrics(path: string, lastStep: number): number {
  const text = readText(path);
  if (text === undefined) return 0;
  const lines = logLines(path, text);
  const past = lines.findIndex((l) => l.rec['step']! > lastStep);
  const kept = past < 0 ? lines : lines.slice(0, past);
  const bytes = Buffer.from(kept.map((l) => l.line).join(''), 'utf8');
  if (kept.length !== lines.length || bytes.length !== Buffer.byteLength(text)) writeAtomic(path, (put) => put(bytes));
  return kept.length;
}

/** An append-only metrics log. */
export class MetricsLog {
  private readonly file: AppendFile;

  private constructor(readonly path: string) {
    this.file = AppendFile.open(path, 'a');
  }

  /** A new, empty log at `path` (a file already there is replaced). */
  static create(path: string): MetricsLog {
    writeAtomic(path, () => {});
    return new MetricsLog(path);
  }

  /** The log of a run resumed after step `lastStep`: cut back to it (see truncateMetrics), then appended to. */
  static resume(path: string, lastStep: number): MetricsLog {
    truncateMetrics(path, lastStep);
    return new MetricsLog(path);
  }

  step(r: StepRecord): void {
    this.file.append(Buffer.from(stepLine(r), 'utf8'));
  }

  eval(step: number, valLoss: number): void {
    this.file.append(Buffer.from(evalLine(step, valLoss), 'utf8'));
  }

  close(): void {
    this.file.close();
  }
}

// ─── the progress line ──────────────────────────────────────────────────────────────────────

const commas = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** 42s, 12m03s, 3h07m, 2d04h. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

export interface Progress {
  /** steps done (1 after the first) */
  done: number;
  /** steps in the run */
  steps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
  /** recent seconds per step, for the ETA (none without it) */
  secondsPerStep?: number;
}

/** `step  120/1000  loss 2.3457  lr 4.80e-4  5,012 tok/s  ETA 12m03s` */
export function formatProgress(p: Progress): string {
  const width = String(p.steps).length;
  const parts = [
    `step ${String(p.done).padStart(width)}/${p.steps}`,
    `loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}`,
    `lr ${p.lr.toExponential(2).replace('e+', 'e')}`,
    `${Number.isFinite(p.tokensPerSecond) ? commas(Math.round(p.tokensPerSecond)) : '?'} tok/s`,
  ];
  if (p.secondsPerStep !== undefined && Number.isFinite(p.secondsPerStep)) parts.push(`ETA ${formatDuration((p.steps - p.done) * p.secondsPerStep)}`);
  return parts.join('  ');
}
