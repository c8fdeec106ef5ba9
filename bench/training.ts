/**
 * The training rows of `npm run bench`: trained tokens/s (forward, backward, clipping and AdamW:
 * whole optimizer steps) and peak memory, kiln beside PyTorch on CPU (tests/oracle/torch_bench.py,
 * the same model in plain torch ops) at the same threads, batch and sequence. Every sample is a
 * process of its own (bench/train-child.ts, or torch), so its peak resident memory is its own;
 * the contestants take turns, the order rotated each round, and the median of the rounds is
 * reported. Samples run in child processes, so the harness's "another process used the CPU" check
 * cannot apply to them: run the bench on an idle machine.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LlamaConfig } from '../src/dsl/llama.js';
import { PRESETS } from '../src/dsl/presets.js';
import { type CellResult, median, type RowResult } from './harness.js';

const PYTHON = '/usr/bin/python3';
const TORCH_BENCH = join('tests', 'oracle', 'torch_bench.py');

export interface TrainingShape {
  readonly id: string;
  readonly config: LlamaConfig;
  readonly batch: number;
  readonly seq: number;
  /** Timed steps per sample (after one warm-up step). */
  readonly steps: number;
}

/** llama2.c's stories260K shape: the small model of the training rows. */
const SMALL: LlamaConfig = { name: 'stories260K-shape', vocabSize: 512, dim: 64, nLayers: 5, nHeads: 8, nKvHeads: 4, hiddenDim: 172, maxSeqLen: 512, tiedEmbeddings: true };

export function trainingShapes(quick: boolean): TrainingShape[] {
  return quick
    ? [{ id: 'small', config: SMALL, batch: 8, seq: 256, steps: 1 }]
    : [
        { id: 'small', config: SMALL, batch: 8, seq: 256, steps: 3 },
        { id: 'stories15M', config: PRESETS['stories15M']!, batch: 8, seq: 256, steps: 2 },
      ];
}

interface Contestant {
  readonly id: string;
  readonly label: string;
  readonly threads: number;
  readonly baseline?: string;
  /** One sample: tokens/s and peak RSS, or why not. */
  run(shape: TrainingShape): { tokensPerS: number; peakBytes: number; detail?: string } | { error: string };
}

function parseLast(stdout: string): Record<string, number> | undefined {
  const line = stdout.trim().split('\n').at(-1);
  try {
    return line ? (JSON.parse(line) as Record<string, number>) : undefined;
  } catch {
    return undefined;
  }
}

const firstLine = (s: string) => s.trim().split('\n').filter(Boolean).at(-1) ?? '';

function kiln(backend: 'js' | 'wasm', threads: number): Contestant {
  const id = backend === 'js' ? 'kiln-js' : `kiln-wasm-${threads}t`;
  return {
    id,
    label: backend === 'js' ? 'kiln js' : `kiln wasm ${threads}t`,
    threads,
    baseline: `torch-${threads}t`,
    run(s) {
      // plain JS loops take ~10× wasm's time: the js cell trains one window per step on the big shape
      const batch = backend === 'js' && s.id !== 'small' ? 1 : s.batch;
      const r = spawnSync(process.execPath, ['--import', './bench/preload.mjs', '--import', 'tsx', 'bench/train-child.ts', JSON.stringify(s.config), String(batch), String(s.seq), backend, String(threads), String(s.steps), '1'], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
        timeout: 20 * 60_000,
      });
      const out = parseLast(r.stdout);
      if (r.status !== 0 || !out) return { error: `kiln ${backend} failed (${r.status ?? r.signal}): ${firstLine(r.stderr)}` };
      return { tokensPerS: out['tokens_per_s']!, peakBytes: out['peak_rss_bytes']!, ...(batch !== s.batch ? { detail: `batch ${batch}` } : {}) };
    },
  };
}

function torch(threads: number): Contestant {
  return {
    id: `torch-${threads}t`,
    label: `PyTorch ${threads}t`,
    threads,
    run(s) {
      const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
      delete env['OPENBLAS_CORETYPE'];
      delete env['OPENBLAS_L2_SIZE'];
      const r = spawnSync(PYTHON, [TORCH_BENCH, '--config', JSON.stringify(s.config), '--batch', String(s.batch), '--seq', String(s.seq), '--threads', String(threads), '--steps', String(s.steps), '--warmup-steps', '1'], {
        encoding: 'utf8',
        env,
        timeout: 20 * 60_000,
      });
      const out = parseLast(r.stdout);
      if (r.status !== 0 || !out) return { error: `PyTorch failed (${r.status ?? r.signal}): ${firstLine(r.stderr)}` };
      return { tokensPerS: out['tokens_per_s']!, peakBytes: out['peak_rss_bytes']! };
    },
  };
}

/** Why PyTorch cannot be the peer here, or undefined. */
function torchProblem(): string | undefined {
  if (!existsSync(PYTHON)) return `no ${PYTHON}: apt-get install python3-torch`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0) return `${PYTHON} cannot import torch: apt-get install python3-torch`;
  const blas = spawnSync('sh', ['-c', 'ls /usr/lib/x86_64-linux-gnu/libopenblas*.so* 2>/dev/null | head -1'], { encoding: 'utf8' }).stdout.trim();
  return blas ? undefined : 'PyTorch runs on the reference BLAS without OpenBLAS (a stories15M step takes > 40 s): apt-get install libopenblas0-pthread';
}

export interface TrainingBench {
  readonly results: RowResult[];
  readonly labels: Record<string, string>;
  readonly notes: string[];
}

export function runTrainingBench(opts: { quick: boolean; rounds: number; threads: readonly number[]; backends: readonly string[]; peers: boolean; log: (s: string) => void }): TrainingBench {
  const contestants: Contestant[] = [];
  if (opts.backends.includes('wasm')) for (const t of opts.threads) contestants.push(kiln('wasm', t));
  if (opts.backends.includes('js')) contestants.push(kiln('js', 1));
  const why = opts.peers ? torchProblem() : 'not run (--no-peers)';
  const peers = opts.threads.map(torch);
  const labels = Object.fromEntries([...contestants, ...peers].map((c) => [c.id, c.label]));
  const notes: string[] = [];
  const results: RowResult[] = [];
  for (const shape of trainingShapes(opts.quick)) {
    const all = why ? contestants : [...contestants, ...peers];
    const samples = new Map<string, { tokensPerS: number; peakBytes: number; detail?: string }[]>(all.map((c) => [c.id, []]));
    const errors = new Map<string, string>();
    for (let round = 0; round < opts.rounds; round++)
      for (let i = 0; i < all.length; i++) {
        const c = all[(i + round) % all.length]!;
        if (errors.has(c.id)) continue;
        const r = c.run(shape);
        if ('error' in r) {
          errors.set(c.id, r.error);
          opts.log(`training ${shape.id}: ${c.label}: ${r.error}`);
          continue;
        }
        samples.get(c.id)!.push(r);
        opts.log(`round ${round + 1}/${opts.rounds}  train ${shape.id} ${shape.batch}×${shape.seq}  ${c.label}: ${r.tokensPerS.toFixed(1)} tokens/s, peak ${(r.peakBytes / 2 ** 20).toFixed(0)} MiB${r.detail ? ` (${r.detail})` : ''}`);
      }
    const med = (id: string, f: (x: { tokensPerS: number; peakBytes: number }) => number) => median((samples.get(id) ?? []).map(f));
    const row = (metric: string, unit: 'tokens/s' | 'MiB', f: (x: { tokensPerS: number; peakBytes: number }) => number): RowResult => ({
      id: `train-${shape.id}-${unit === 'MiB' ? 'memory' : 'speed'}`,
      group: 'training',
      subject: `${shape.id} train ${shape.batch}×${shape.seq}`,
      metric,
      unit,
      cells: [...contestants, ...peers].map((c): CellResult => {
        const m = med(c.id, f);
        const base = c.baseline ? med(c.baseline, f) : null;
        const s = samples.get(c.id) ?? [];
        return {
          contestant: c.id,
          samples: s.map((x, round) => ({ round, value: f(x), cpu: { seconds: 0, busy: false } as never })),
          median: m,
          disturbed: false,
          ratio: m !== null && base ? m / base : null,
          ...(c.baseline ? { baseline: c.baseline } : {}),
          ...(errors.has(c.id) ? { unavailable: errors.get(c.id)! } : !samples.has(c.id) ? { unavailable: why! } : {}),
          ...(s.some((x) => x.detail) ? { note: `trains ${s[0]!.detail} per step, not ${shape.batch} (plain JS loops: a full step takes minutes)` } : {}),
        };
      }),
    });
    results.push(row('tokens/s', 'tokens/s', (x) => x.tokensPerS), row('peak memory, MiB (lower is better)', 'MiB', (x) => x.peakBytes / 2 ** 20));
  }
  notes.push('Training rows: whole optimizer steps (every window forward and backward, the gradient sum, global-norm clipping, AdamW), after one warm-up step, each sample a process of its own (compile excluded); peak memory is that process\'s maximum resident set. PyTorch: Debian\'s torch 1.13 on OpenBLAS, OPENBLAS_NUM_THREADS and torch threads equal to the column\'s.');
  return { results, labels, notes };
}
