/**
 * kiln's training against PyTorch (tests/oracle/torch_train.py, float64): the same model from the
 * same GGUF, the same windows in the same order (kiln's `--no-shuffle` rule: row b of step s is
 * window (s·B + b) mod count), the same schedule, AdamW and clipping. Every step's loss and
 * gradient norm (before clipping) must agree to 1e-5 relative over 50 steps, on the js and wasm
 * backends (float32), and the final weights to 1e-4 of each tensor's largest value. Measured here:
 * PyTorch in float32 and float64 agree to 1.2e-7 on the loss and 3.6e-7 on the norm over such a
 * run, so the bound leaves room for kiln's own float32 sums and nothing more.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../backends/backend.js';
import { jsBackend } from '../backends/js/index.js';
import { createWasmBackend } from '../backends/wasm/index.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { checkpointWeights, loadCheckpoint } from '../src/formats/checkpoint.js';
import { llamaGgufMetadata, writeGguf } from '../src/formats/gguf-write.js';
import { mulberry32 } from '../src/runtime/rng.js';
import { randomWeights } from '../src/runtime/weights.js';
import { DataCursor, splitData } from '../src/train/data.js';
import { type TrainSettings, train } from '../src/train/run.js';
import { PYTHON, needs } from './stacks.js';

const BOUND = 1e-5;
const SCRIPT = join(import.meta.dirname, 'oracle', 'torch_train.py');
const dir = mkdtempSync(join(tmpdir(), 'kiln-train-oracle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETTINGS: TrainSettings = {
  batch: 3,
  seq: 8,
  gradAccum: 2,
  steps: 50,
  lr: 3e-3,
  minLr: 3e-4,
  warmup: 5,
  weightDecay: 0.1,
  clip: 1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  dropout: 0,
  seed: 0,
  shuffle: false,
  evalEvery: 0,
  evalBatches: 1,
  saveEvery: 0,
};

const CASES: (LlamaConfig & { name: string })[] = [
  { name: 'oracle-gqa', vocabSize: 53, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 48, maxSeqLen: 16, normEps: 1e-5 },
  { name: 'oracle-mqa-tied', vocabSize: 41, dim: 24, nLayers: 2, nHeads: 3, nKvHeads: 1, hiddenDim: 40, maxSeqLen: 16, ropeBase: 500000, normEps: 1e-6, tiedEmbeddings: true },
];

interface TorchOut {
  steps: { step: number; loss: number; grad_norm: number; lr: number }[];
}

/** A token stream with some structure to learn (a noisy repeating pattern), seeded. */
function stream(vocab: number, n: number, seed: number): Int32Array {
  const r = mulberry32(seed);
  return Int32Array.from({ length: n }, (_, i) => (r() < 0.8 ? (i * 7 + Math.floor(i / 5)) % vocab : Math.floor(r() * vocab)));
}

async function prepare(c: LlamaConfig & { name: string }) {
  const g0 = llama(c).build();
  const w0 = randomWeights(g0, 11, 0.1);
  const path = join(dir, `${c.name}.gguf`);
  const params = g0.nodes.filter((n) => n.op === 'param').map((n) => [String(n.attrs['name']), n.type.shape as number[]] as const);
  writeGguf(path, { metadata: llamaGgufMetadata(c), tensors: params.map(([name, shape]) => ({ name, dtype: 'f32' as const, shape, data: w0[name]! })) });
  // kiln reads the file back as a user's fine-tune would (eps and the rope base become f32s)
  const ck = await loadCheckpoint(path);
  const g = llama(ck.config).build();
  const ids = stream(c.vocabSize, 40 * SETTINGS.seq + 1, 5);
  const data = splitData(ids, { seq: SETTINGS.seq, valFraction: 0 });
  // the windows torch sees: kiln's cursor, drawn the same way the run draws them
  const cursor = new DataCursor(data.train, { shuffle: false });
  const windows: number[][][] = [];
  for (let k = 0; k < SETTINGS.steps * SETTINGS.gradAccum; k++) {
    const b = cursor.next(SETTINGS.batch);
    windows.push(b.inputs.map((inp, i) => [...inp, b.targets[i]!.at(-1)!]));
  }
  return { path, g, ck, data, windows };
}

function torch(specs: object[]): TorchOut[] {
  const p = join(dir, 'spec.json');
  writeFileSync(p, JSON.stringify(specs));
  const r = spawnSync(PYTHON, [SCRIPT, p], { encoding: 'utf8', maxBuffer: 1 << 28, env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
  if (r.status !== 0) throw new Error(`torch_train.py failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as TorchOut[];
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

describe('kiln train against PyTorch (float64), 50 AdamW steps', () => {
  let prepared: Promise<{ cases: Awaited<ReturnType<typeof prepare>>[]; torch: TorchOut[] }> | undefined;
  const oracle = () =>
    (prepared ??= (async () => {
      const cases = await Promise.all(CASES.map(prepare));
      const s = SETTINGS;
      const specs = cases.map((c, i) => ({
        gguf: c.path,
        windows: c.windows,
        steps: s.steps,
        lr: s.lr,
        min_lr: s.minLr,
        warmup: s.warmup,
        weight_decay: s.weightDecay,
        beta1: s.beta1,
        beta2: s.beta2,
        eps: s.eps,
        clip: s.clip,
        grad_accum: s.gradAccum,
        dtype: 'float64',
        out_weights: join(dir, `${CASES[i]!.name}-weights`),
      }));
      return { cases, torch: torch(specs) };
    })());

  const backends: [string, () => Backend][] = [
    ['js', () => jsBackend],
    ['wasm', () => createWasmBackend({ threads: 1 })],
  ];
  for (const [bname, make] of backends)
    CASES.forEach((c, i) => {
      it(`${c.name} on ${bname}: every step's loss and gradient norm within ${BOUND} of PyTorch's`, async (ctx) => {
        await needs(ctx, 'pytorch');
        const { cases, torch: out } = await oracle();
        const k = cases[i]!;
        const weights = Object.fromEntries(Object.entries(checkpointWeights(k.ck)).map(([n, w]) => [n, Float32Array.from(w)]));
        const res = await train({ model: k.g, weights, backend: make(), data: k.data, settings: SETTINGS, identity: {}, outDir: join(dir, `${c.name}-${bname}`) });
        const t = out[i]!.steps;
        expect(res.steps).toHaveLength(SETTINGS.steps);
        expect(t).toHaveLength(SETTINGS.steps);
        let worstLoss = 0;
        let worstNorm = 0;
        res.steps.forEach((r, s) => {
          expect(r.lr).toBeCloseTo(t[s]!.lr, 15);
          worstLoss = Math.max(worstLoss, rel(r.loss, t[s]!.loss));
          worstNorm = Math.max(worstNorm, rel(r.grad_norm, t[s]!.grad_norm));
        });
        console.log(`${c.name} ${bname}: loss ${t[0]!.loss.toFixed(4)} → ${t.at(-1)!.loss.toFixed(4)}; largest relative difference from PyTorch: loss ${worstLoss.toExponential(2)}, gradient norm ${worstNorm.toExponential(2)}`);
        expect(worstLoss).toBeLessThanOrEqual(BOUND);
        expect(worstNorm).toBeLessThanOrEqual(BOUND);
        // and it learnt something: the pattern is mostly predictable
        expect(t.at(-1)!.loss).toBeLessThan(t[0]!.loss - 0.5);
        // the weights it ends with
        const man = JSON.parse(readFileSync(join(dir, `${c.name}-weights`, 'manifest.json'), 'utf8')) as { tensors: { name: string; file: string }[] };
        let worstW = 0;
        for (const { name, file } of man.tensors) {
          const b = readFileSync(join(dir, `${c.name}-weights`, file));
          const tw = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
          const kw = res.weights[name]!;
          const scale = tw.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
          for (let j = 0; j < tw.length; j++) worstW = Math.max(worstW, Math.abs(kw[j]! - tw[j]!) / scale);
        }
        expect(worstW).toBeLessThanOrEqual(1e-4);
      }, 120_000);
    });
});
