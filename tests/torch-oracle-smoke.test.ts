import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { interpret } from '../graph/interpret.js';
import { hostTensor } from '../graph/tensor.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { loadCheckpoint, checkpointWeights } from '../src/formats/checkpoint.js';
import { llamaGgufMetadata, writeGguf } from '../src/formats/gguf-write.js';
import { randomWeights, weightsToHost } from '../src/runtime/weights.js';
import { PYTHON, needs } from './stacks.js';

/**
 * The PyTorch training oracle (tests/oracle/torch_train.py, see torch-train.md) holds kiln's model
 * definition: on GGUFs written by kiln's writer, its float64 logits must be the reference
 * interpreter's. Measured 1.6e-15…4.1e-15 (float64) and 4.9e-7…1.9e-6 (float32) relative; the
 * bounds below leave room for another BLAS's summation order. The other RoPE layout moves logits
 * by 0.5…1.7, so a layout mix-up cannot pass. Then a short run checks the training side's
 * conventions (the schedule, step 0's loss as kiln's cross-entropy, the trained GGUF readable by kiln).
 */
const F64_BOUND = 1e-9;
const F32_BOUND = 1e-5;
const SCRIPT = join(import.meta.dirname, 'oracle', 'torch_train.py');

const dir = mkdtempSync(join(tmpdir(), 'kiln-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface OracleOut {
  logits?: number[][][];
  loss?: number;
  steps?: { step: number; lr: number; loss: number; grad_norm: number }[];
}

/** Runs specs in one interpreter start (torch's import takes ~1.5 s); one result per spec. */
function oracle(specs: object[], name: string): OracleOut[] {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(specs));
  const r = spawnSync(PYTHON, [SCRIPT, path], { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  if (r.status !== 0) throw new Error(`torch_train.py failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as OracleOut[];
}

function writeModel(config: LlamaConfig & { name: string }, seed: number): string {
  const g = llama(config).build();
  const w = randomWeights(g, seed, 0.1);
  const params = g.nodes.filter((n) => n.op === 'param').map((n) => [String(n.attrs['name']), n.type.shape as number[]] as const);
  const path = join(dir, `${config.name}.gguf`);
  writeGguf(path, { metadata: llamaGgufMetadata(config), tensors: params.map(([name, shape]) => ({ name, dtype: 'f32' as const, shape, data: w[name]! })) });
  return path;
}

/** kiln's float64 logits [T·vocab] for each row's inputs row[:-1], from the GGUF as kiln reads it. */
async function kilnLogits(path: string, rows: number[][], override: Partial<LlamaConfig> = {}): Promise<Float64Array[]> {
  const ck = await loadCheckpoint(path);
  const g = llama({ ...ck.config, ...override }).build();
  const params = weightsToHost(g, checkpointWeights(ck));
  return rows.map((row) => interpret(g, { inputs: { tokens: hostTensor('i32', [row.length - 1], row.slice(0, -1)) }, params })['logits']!.data as Float64Array);
}

/** Mean next-token cross-entropy of rows given their logits. */
function crossEntropy(logits: Float64Array[], rows: number[][], vocab: number): number {
  let sum = 0;
  let n = 0;
  rows.forEach((row, b) => {
    for (let t = 0; t + 1 < row.length; t++) {
      const r = logits[b]!.subarray(t * vocab, (t + 1) * vocab);
      const m = Math.max(...r);
      sum += m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0)) - r[row[t + 1]!]!;
      n++;
    }
  });
  return sum / n;
}

function maxRel(torch: number[][][], kiln: Float64Array[], vocab: number): number {
  let worst = 0;
  torch.forEach((rows, b) => rows.forEach((r, t) => r.forEach((v, i) => {
    const k = kiln[b]![t * vocab + i]!;
    worst = Math.max(worst, Math.abs(v - k) / Math.max(Math.abs(k), 1));
  })));
  return worst;
}

const window = (vocab: number, B: number, T: number, seed: number): number[][] =>
  Array.from({ length: B }, (_, b) => Array.from({ length: T + 1 }, (_, t) => (t * 31 + b * 17 + seed * 7 + 3) % vocab));

const CASES: { config: LlamaConfig & { name: string }; seed: number; layout?: 'half' }[] = [
  { seed: 1, config: { name: 'torch-mha', vocabSize: 97, dim: 32, nLayers: 2, nHeads: 4, hiddenDim: 80, maxSeqLen: 32, normEps: 1e-5 } },
  { seed: 2, config: { name: 'torch-gqa-tied', vocabSize: 97, dim: 64, nLayers: 2, nHeads: 8, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 32, ropeBase: 500000, normEps: 1e-6, tiedEmbeddings: true } },
  // kiln's GGUF reader always says 'interleaved'; the spec's rope_layout and the config override say 'half'
  { seed: 3, layout: 'half', config: { name: 'torch-half-mqa', vocabSize: 61, dim: 48, nLayers: 2, nHeads: 6, nKvHeads: 1, hiddenDim: 64, maxSeqLen: 32 } },
];

describe('PyTorch oracle (tests/oracle/torch_train.py)', () => {
  // Every case's three forwards (f64, f32, f64 with the other layout) in one oracle run.
  let logitRuns: Promise<{ kiln: Float64Array[]; f64: OracleOut; f32: OracleOut; other: OracleOut }[]> | undefined;
  const runLogits = () =>
    (logitRuns ??= (async () => {
      const prepared = await Promise.all(
        CASES.map(async (c) => {
          const path = writeModel(c.config, c.seed);
          const rows = window(c.config.vocabSize, 2, 10, c.seed);
          return { c, path, rows, kiln: await kilnLogits(path, rows, c.layout ? { ropeLayout: c.layout } : {}) };
        }),
      );
      const spec = (path: string, rows: number[][], dtype: string, layout?: string) => ({ gguf: path, windows: [rows], logits_only: true, dtype, ...(layout ? { rope_layout: layout } : {}) });
      const specs = prepared.flatMap(({ c, path, rows }) => [
        spec(path, rows, 'float64', c.layout),
        spec(path, rows, 'float32', c.layout),
        spec(path, rows, 'float64', c.layout ? 'interleaved' : 'half'),
      ]);
      const out = oracle(specs, 'logits');
      return prepared.map((p, i) => ({ kiln: p.kiln, f64: out[3 * i]!, f32: out[3 * i + 1]!, other: out[3 * i + 2]! }));
    })());

  CASES.forEach((c, i) => {
    it(`${c.config.name}: torch logits are the interpreter's (f64 ${F64_BOUND}, f32 ${F32_BOUND}); the other RoPE layout is far off`, async (ctx) => {
      await needs(ctx, 'pytorch');
      const { kiln, f64, f32, other } = (await runLogits())[i]!;
      const V = c.config.vocabSize;
      expect(maxRel(f64.logits!, kiln, V)).toBeLessThan(F64_BOUND);
      expect(Math.abs(f64.loss! - crossEntropy(kiln, window(V, 2, 10, c.seed), V))).toBeLessThan(1e-12);
      expect(maxRel(f32.logits!, kiln, V)).toBeLessThan(F32_BOUND);
      expect(maxRel(other.logits!, kiln, V)).toBeGreaterThan(1e-2);
    });
  });

  it('a short AdamW run: the schedule, step 0 as kiln\'s loss, f32 ≈ f64, and a trained GGUF kiln reads back', async (ctx) => {
    await needs(ctx, 'pytorch');
    const config = { name: 'torch-train', vocabSize: 64, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 48, maxSeqLen: 32 };
    const path = writeModel(config, 4);
    const [N, A, W] = [8, 2, 3];
    const windows = Array.from({ length: N * A }, (_, i) => window(64, 2, 12, i));
    const base = { gguf: path, windows, steps: N, grad_accum: A, lr: 3e-3, min_lr: 3e-4, warmup: W, weight_decay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, clip: 1.0 };
    const [f64, f32] = oracle([{ ...base, dtype: 'float64', out_gguf: 'trained.gguf' }, { ...base, dtype: 'float32' }], 'train') as [OracleOut, OracleOut];
    const steps = f64.steps!;
    expect(steps.map((s) => s.step)).toEqual([...Array(N).keys()]);
    const lr = (s: number) => (s < W ? (3e-3 * (s + 1)) / W : 3e-4 + (3e-3 - 3e-4) * 0.5 * (1 + Math.cos((Math.PI * (s - W)) / (N - W))));
    steps.forEach((s, i) => expect(s.lr).toBeCloseTo(lr(i), 15));
    const kiln0 = await Promise.all(windows.slice(0, A).map(async (w) => crossEntropy(await kilnLogits(path, w), w, 64)));
    expect(Math.abs(steps[0]!.loss - (kiln0[0]! + kiln0[1]!) / 2)).toBeLessThan(1e-12);
    expect(steps.at(-1)!.loss).toBeLessThan(steps[0]!.loss);
    f32.steps!.forEach((s, i) => {
      expect(Math.abs(s.loss - steps[i]!.loss) / steps[i]!.loss).toBeLessThan(1e-5);
      expect(Math.abs(s.grad_norm - steps[i]!.grad_norm) / steps[i]!.grad_norm).toBeLessThan(1e-5);
    });
    const trained = await loadCheckpoint(join(dir, 'trained.gguf'));
    const before = await loadCheckpoint(path);
    expect(trained.config).toEqual(before.config);
    expect(trained.tensors.get('blk.0.attn_q.weight')!.toFloat32()).not.toEqual(before.tensors.get('blk.0.attn_q.weight')!.toFloat32());
  });
});
