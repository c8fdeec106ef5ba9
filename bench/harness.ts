/**
 * Interleaved rounds. Every row (a model phase or a kernel) has one cell per contestant; a round
 * measures every row's cells once, the contestants' order rotated each round, so that a slow
 * minute of the machine falls on all of them rather than on one. Each sample carries what other
 * processes did while it was taken (machine.ts); the figure reported is the median of the clean
 * samples when there are at least two, else of all of them, and then it is marked.
 */
import { type CpuShare, watchCpu } from './machine.js';

export type Unit = 'tokens/s' | 'GFLOP/s' | 'MiB';

export interface Cell {
  readonly contestant: string;
  /** Takes one sample: the figure in the row's unit (and what it covered, if not the row's title). Absent when the contestant is unavailable. */
  readonly measure?: () => Promise<Measured>;
  /** Why there is no figure. */
  readonly unavailable?: string;
  /** The contestant this cell's ratio is taken against (same threads), if any. */
  readonly baseline?: string;
  /** How this cell's sample differs from the row's title (e.g. fewer decode tokens). */
  readonly note?: string;
}

export type Measured = number | { readonly value: number; readonly detail: string };

export interface Row {
  readonly id: string;
  readonly group: 'model' | 'kernel' | 'training';
  readonly subject: string;
  readonly metric: string;
  readonly unit: Unit;
  readonly cells: readonly Cell[];
}

export interface Sample {
  readonly round: number;
  readonly value: number;
  readonly detail?: string;
  readonly cpu: CpuShare;
}

export interface CellResult {
  readonly contestant: string;
  readonly samples: readonly Sample[];
  readonly median: number | null;
  /** The median had to include samples taken while the CPU was busy. */
  readonly disturbed: boolean;
  readonly ratio: number | null;
  readonly baseline?: string;
  readonly unavailable?: string;
  readonly note?: string;
}

export interface RowResult {
  readonly id: string;
  readonly group: 'model' | 'kernel' | 'training';
  readonly subject: string;
  readonly metric: string;
  readonly unit: Unit;
  readonly cells: readonly CellResult[];
}

export interface RoundInfo {
  readonly round: number;
  readonly cpu: CpuShare;
  /** Samples of this round taken while another process used the CPU. */
  readonly busySamples: number;
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export type Progress = (line: string) => void;

/** Rows may be measured a different number of rounds (the slow ones fewer): `roundsOf(row)`. */
/** A full collection where node runs with --expose-gc (npm run bench does); a no-op otherwise. */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/**
 * `warmup` rounds run first and are not recorded: the first round after the setup measured every
 * contestant slower (kiln wasm's matmul at 25 GFLOP/s against 44–48 later, llama.cpp's stories110M
 * prefill at 133 tokens/s against 296–302), beyond what the single warm-up call of each cell undoes.
 */
export async function runRounds(
  rows: readonly Row[],
  rounds: number,
  cores: number,
  log: Progress,
  roundsOf: (row: Row) => number = () => rounds,
  warmup = 0,
): Promise<{ results: RowResult[]; rounds: RoundInfo[] }> {
  for (let w = 0; w < warmup; w++) {
    const t0 = performance.now();
    for (const row of rows)
      for (const cell of row.cells.filter((c) => c.measure)) {
        collectGarbage();
        await cell.measure!();
      }
    log(`warm-up round ${w + 1}/${warmup} done in ${((performance.now() - t0) / 1000).toFixed(1)} s (not recorded)`);
  }
  const samples = new Map<string, Sample[]>(rows.flatMap((r) => r.cells.map((c) => [`${r.id}/${c.contestant}`, []] as const)));
  const info: RoundInfo[] = [];
  for (let round = 0; round < rounds; round++) {
    const endRound = watchCpu(cores);
    let busySamples = 0;
    for (const row of rows) {
      if (round >= roundsOf(row)) continue;
      const live = row.cells.filter((c) => c.measure);
      const order = live.map((_, i) => live[(i + round) % live.length]!);
      for (const cell of order) {
        // Collect the garbage the previous contestant left (the js backend makes plenty), so that
        // no sample pays for another's: its concurrent marking would share the cores and DRAM.
        collectGarbage();
        const end = watchCpu(cores);
        const m = await cell.measure!();
        const cpu = end();
        const { value, detail } = typeof m === 'number' ? { value: m, detail: undefined } : m;
        if (cpu.busy) busySamples++;
        samples.get(`${row.id}/${cell.contestant}`)!.push({ round, value, cpu, ...(detail ? { detail } : {}) });
        log(`round ${round + 1}/${rounds}  ${row.subject} ${row.metric}  ${cell.contestant}: ${fmt(value)} ${row.unit}${detail ? ` (${detail})` : ''}${cpu.busy ? `  (busy: others ${cpu.othersCores ?? '?'} cores, steal ${cpu.steal ?? '?'})` : ''}`);
      }
    }
    const cpu = endRound();
    info.push({ round, cpu, busySamples });
    log(`round ${round + 1}/${rounds} done in ${cpu.seconds.toFixed(1)} s; other processes ${cpu.othersCores ?? '?'} cores, steal ${cpu.steal ?? '?'}, load ${cpu.load1}${busySamples ? `; ${busySamples} busy samples` : ''}`);
  }
  const results = rows.map((row): RowResult => {
    const cells = row.cells.map((c) => {
      const s = samples.get(`${row.id}/${c.contestant}`)!;
      const clean = s.filter((x) => !x.cpu.busy);
      const use = clean.length >= 2 || clean.length === s.length ? clean : s;
      return { c, s, med: median(use.map((x) => x.value)), disturbed: use.length > 0 && use !== clean };
    });
    return {
      id: row.id,
      group: row.group,
      subject: row.subject,
      metric: row.metric,
      unit: row.unit,
      cells: cells.map(({ c, s, med, disturbed }) => {
        const base = c.baseline ? cells.find((x) => x.c.contestant === c.baseline)?.med : undefined;
        return {
          contestant: c.contestant,
          samples: s,
          median: med,
          disturbed,
          ratio: med !== null && base ? med / base : null,
          ...(c.baseline ? { baseline: c.baseline } : {}),
          ...(c.unavailable ? { unavailable: c.unavailable } : {}),
          ...(c.note ? { note: c.note } : {}),
        };
      }),
    };
  });
  return { results, rounds: info };
}

export const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
