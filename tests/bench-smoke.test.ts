/**
 * `npm run bench --quick` on the tiny preset, end to end: it runs, writes both reports, and shows
 * a contestant that cannot run (llama.cpp cannot load a 64-token vocabulary) as not available with
 * the reason rather than a figure. No time is asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { median, runRounds } from '../bench/harness.js';
import { needs } from './stacks.js';

const out = mkdtempSync(join(os.tmpdir(), 'kiln-bench-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('bench', () => {
  it('median of odd and even counts, and of none', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it('warm-up rounds measure every cell and record nothing; the recorded rounds follow', async () => {
    let calls = 0;
    const row = { id: 'r', group: 'kernel' as const, subject: 's', metric: 'm', unit: 'GFLOP/s' as const, cells: [{ contestant: 'a', measure: async () => ++calls }] };
    const lines: string[] = [];
    const { results, rounds } = await runRounds([row], 3, 2, (l) => lines.push(l), undefined, 2);
    expect(calls).toBe(5);
    expect(results[0]!.cells[0]!.samples.map((x) => x.value)).toEqual([3, 4, 5]);
    expect(rounds).toHaveLength(3);
    expect(lines.filter((l) => l.startsWith('warm-up round'))).toHaveLength(2);
  });

  it('runs --quick on the tiny preset and writes the table and the JSON', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--models', 'tiny', '--backends', 'js', '--no-kernels', '--no-training', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\| tiny \| prefill 32 \| [\d.]+/m);
    expect(r.stdout).toMatch(/^\| tiny \| decode 16 after 16 \| [\d.]+/m);
    expect(r.stderr).toContain('round 1/1');
    const rep = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8'));
    expect(rep.machine.cores).toBeGreaterThan(0);
    const rows = rep.results as { id: string; cells: { contestant: string; median: number | null; unavailable?: string; samples: unknown[] }[] }[];
    expect(rows.map((x) => x.id)).toEqual(['tiny-prefill', 'tiny-decode']);
    for (const row of rows) {
      const js = row.cells.find((c) => c.contestant === 'kiln-js')!;
      expect(js.samples).toHaveLength(1);
      expect(js.median).toBeGreaterThan(0);
      const lc = row.cells.find((c) => c.contestant === 'llama-cpp-1t')!;
      expect(lc.median).toBeNull();
      expect(lc.unavailable).toMatch(/vocabulary/);
    }
    expect(readFileSync(join(out, 'bench.md'), 'utf8')).toBe(r.stdout);
  });

  it('--quick training rows: kiln wasm and PyTorch each train the small shape in a process of their own, tokens/s and peak memory', async (ctx) => {
    await needs(ctx, 'pytorch');
    const dir = join(out, 'training');
    const r = spawnSync(process.execPath, ['--import', './bench/preload.mjs', '--import', 'tsx', 'bench/run.ts', '--quick', '--no-models', '--no-kernels', '--backends', 'wasm', '--threads', '1', '--out', dir], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^## Training: trained tokens\/s and peak memory/m);
    const rep = JSON.parse(readFileSync(join(dir, 'bench.json'), 'utf8'));
    const rows = rep.results as { id: string; unit: string; cells: { contestant: string; median: number | null; ratio: number | null; unavailable?: string }[] }[];
    expect(rows.map((x) => x.id)).toEqual(['train-small-speed', 'train-small-memory']);
    for (const row of rows) {
      const kiln = row.cells.find((c) => c.contestant === 'kiln-wasm-1t')!;
      const torch = row.cells.find((c) => c.contestant === 'torch-1t')!;
      // without OpenBLAS torch is not a fair peer and says so instead of a figure
      if (torch.unavailable) expect(torch.unavailable).toMatch(/OpenBLAS|torch/);
      else expect(torch.median).toBeGreaterThan(0);
      expect(kiln.median, kiln.unavailable).toBeGreaterThan(0);
      if (!torch.unavailable) expect(kiln.ratio).toBeGreaterThan(0);
    }
  }, 300_000);
});
