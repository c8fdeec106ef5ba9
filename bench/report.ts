/** The bench's results as JSON (everything, samples included) and as a markdown table. */
import type { RoundInfo, RowResult } from './harness.js';
import { fmt } from './harness.js';
import type { Machine } from './machine.js';

export interface BenchReport {
  readonly machine: Machine;
  readonly startedAt: string;
  readonly seconds: number;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  /** What was measured and how (counts, rounds, versions of the peers). */
  readonly config: Readonly<Record<string, unknown>>;
  /** Contestant id → its display name. */
  readonly labels: Readonly<Record<string, string>>;
  readonly rounds: readonly RoundInfo[];
  readonly results: readonly RowResult[];
  readonly notes: readonly string[];
}

function cell(r: RowResult, id: string): string {
  const c = r.cells.find((x) => x.contestant === id);
  if (!c) return '';
  if (c.unavailable) return 'not available';
  if (c.median === null) return 'no samples';
  const ratio = c.ratio !== null ? ` (${c.ratio.toFixed(2)}×)` : '';
  const early = c.samples.some((x) => x.detail);
  return `${fmt(c.median)}${ratio}${c.disturbed ? ' †' : ''}${c.note ? ' ‡' : ''}${early ? ' §' : ''}`;
}

function table(rows: readonly RowResult[], labels: Readonly<Record<string, string>>, head: readonly string[], lead: (r: RowResult) => string[]): string[] {
  const ids = [...new Set(rows.flatMap((r) => r.cells.map((c) => c.contestant)))];
  const out = [`| ${[...head, ...ids.map((id) => labels[id] ?? id)].join(' | ')} |`, `| ${[...head, ...ids].map(() => '---').join(' | ')} |`];
  for (const r of rows) out.push(`| ${[...lead(r), ...ids.map((id) => cell(r, id))].join(' | ')} |`);
  const missing = new Map<string, string>();
  const notes = new Set<string>();
  for (const r of rows)
    for (const c of r.cells) {
      if (c.unavailable) missing.set(labels[c.contestant] ?? c.contestant, c.unavailable);
      const who = `${labels[c.contestant] ?? c.contestant}, ${r.subject} ${r.metric}`;
      if (c.note) notes.add(`‡ ${who}: ${c.note}`);
      const early = c.samples.filter((x) => x.detail);
      if (early.length) notes.add(`§ ${who}: ${early.length} of ${c.samples.length} samples stopped at the time budget (${early.map((x) => x.detail).join('; ')})`);
    }
  if (missing.size) out.push('', ...[...missing].map(([who, why]) => `- **${who}: not available** — ${why}`));
  if (notes.size) out.push('', ...[...notes].map((n) => `- ${n}`));
  return out;
}

export function markdown(rep: BenchReport): string {
  const m = rep.machine;
  const models = rep.results.filter((r) => r.group === 'model');
  const kernels = rep.results.filter((r) => r.group === 'kernel');
  const busyRounds = rep.rounds.filter((r) => r.busySamples > 0).length;
  const lines = [
    '# kiln bench',
    '',
    `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}; ${m.platform}; kiln ${m.kilnCommit}; ${rep.startedAt}, ${rep.seconds.toFixed(0)} s.`,
    `Load average before ${rep.loadBefore.join(' ')}, after ${rep.loadAfter.join(' ')}. ` +
      `Medians over interleaved rounds (contestants round-robin, order rotated each round) of the samples taken while no other process used the CPU; ` +
      `† marks a median that had to include disturbed samples.`,
    '',
  ];
  if (models.length) {
    lines.push('## Models: tokens/s (× llama.cpp with the same threads)', '');
    lines.push(...table(models, rep.labels, ['model', 'phase'], (r) => [r.subject, r.metric]), '');
  }
  const training = rep.results.filter((r) => r.group === 'training');
  if (training.length) {
    lines.push('## Training: trained tokens/s and peak memory (× PyTorch CPU with the same threads)', '');
    lines.push(...table(training, rep.labels, ['model', 'figure'], (r) => [r.subject, r.metric]), '');
  }
  if (kernels.length) {
    lines.push('## Kernels: GFLOP/s (× TensorFlow.js wasm, single-threaded)', '');
    lines.push(...table(kernels, rep.labels, ['kernel', 'bound by'], (r) => [r.subject, r.metric]), '');
  }
  lines.push('## The CPU during the run', '');
  lines.push('| round | seconds | this process (cores) | other processes (cores) | steal | load (1 min) | disturbed samples |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rep.rounds) lines.push(`| ${r.round + 1} | ${r.cpu.seconds.toFixed(1)} | ${r.cpu.selfCores ?? '?'} | ${r.cpu.othersCores ?? '?'} | ${r.cpu.steal ?? '?'} | ${r.cpu.load1} | ${r.busySamples}${r.busySamples ? ' (busy)' : ''} |`);
  lines.push('', `${busyRounds} of ${rep.rounds.length} rounds had samples taken while another process used the CPU (others > ${m.cores / 4} cores on average, or steal > 10%).`);
  if (rep.notes.length) lines.push('', '## Notes', '', ...rep.notes.map((n) => `- ${n}`));
  return lines.join('\n') + '\n';
}
