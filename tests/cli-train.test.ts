/**
 * `kiln train` from the command line, as the README gives it: a preset trained on README.md
 * writes a model that `kiln run` and llama.cpp load, plus metrics, event files and the loss
 * picture, and its loss falls; a run killed with SIGKILL and resumed gives the very losses and
 * weights of the uninterrupted run; bad input is one line and loses nothing.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/runtime/session.js';
import { jsBackend } from '../backends/js/index.js';
import { llama } from '../src/dsl/llama.js';
import { checkpointWeights, loadCheckpoint } from '../src/formats/checkpoint.js';
import { disposeLlamaCpp, llamaCppGreedy } from './oracle/llama-cpp.js';

const ROOT = resolve(import.meta.dirname, '..');
const KILN = join(ROOT, 'bin', 'kiln.js');
const tmp = mkdtempSync(join(tmpdir(), 'kiln-train-cli-'));
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(tmp, { recursive: true, force: true });
});

const ENV = { ...process.env, KILN_DEBUG: '' };
function kiln(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [KILN, ...args], { cwd: ROOT, encoding: 'utf8', env: ENV, timeout: 240_000 });
}

interface Line {
  step: number;
  loss?: number;
  grad_norm?: number;
  val_loss?: number;
}
const metrics = (dir: string): Line[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
/** What must repeat exactly: every number but the timings. */
const numbers = (dir: string) => metrics(dir).map(({ step, loss, grad_norm, val_loss }) => ({ step, loss, grad_norm, val_loss }));

const RUN = ['train', 'preset:tiny', '--data', 'README.md', '--steps', '50', '--backend', 'js'];

describe('kiln train', () => {
  const out = join(tmp, 'tiny-trained');
  let first: SpawnSyncReturns<string> | undefined;
  const trained = () => (first ??= kiln([...RUN, '--out', out, '--save-every', '10']));

  it('trains preset:tiny on README.md: the model, metrics, event file and picture, and the loss falls', () => {
    const r = trained();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/tiny has no tokenizer: made one of 64 pieces from the data/);
    expect(r.stderr).toMatch(/kiln: --lr 0\.001 \(fresh weights; give --lr to change it\)/);
    expect(r.stderr).toMatch(/memory: .* of intermediates per window/);
    expect(r.stderr).toMatch(/step 50\/50 {2}loss \d\.\d{4} {2}lr /);
    expect(r.stderr).toMatch(/eval at step 50: validation loss \d\.\d+, perplexity/);
    for (const f of ['model.gguf', 'metrics.jsonl', 'loss.svg', 'safetensors/model.safetensors', 'safetensors/config.json', 'safetensors/tokenizer.json']) expect(existsSync(join(out, f)), f).toBe(true);
    expect(readdirSync(out).some((f) => f.startsWith('events.out.tfevents.'))).toBe(true);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    const steps = metrics(out).filter((l) => l.loss !== undefined);
    expect(steps.map((l) => l.step)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const mean = (xs: Line[]) => xs.reduce((a, l) => a + l.loss!, 0) / xs.length;
    expect(mean(steps.slice(-5))).toBeLessThan(mean(steps.slice(0, 5)) - 0.15);
    const evals = metrics(out).filter((l) => l.val_loss !== undefined);
    expect(evals.at(-1)!.val_loss!).toBeLessThan(evals[0]!.val_loss!);
  });

  it('kiln run loads the trained model (GGUF and safetensors) and prints text', () => {
    expect(trained().status).toBe(0);
    for (const m of [join(out, 'model.gguf'), join(out, 'safetensors')]) {
      const r = kiln(['run', m, '--prompt', 'kiln', '--max-tokens', '12']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.startsWith('kiln')).toBe(true);
      expect(r.stdout.length).toBeGreaterThan(6);
    }
  });

  it('llama.cpp loads the trained GGUF and decodes the tokens kiln decodes', async () => {
    expect(trained().status).toBe(0);
    const path = join(out, 'model.gguf');
    const ck = await loadCheckpoint(path);
    const s = await Session.create(llama(ck.config).build(), { backend: jsBackend, weights: checkpointWeights(ck), maxSeqLen: 32 });
    const prompt = [1, 5, 9, 12];
    const mine: number[] = [];
    for await (const step of s.generate(prompt, { maxTokens: 16 })) mine.push(step.token);
    expect(await llamaCppGreedy(path, prompt, 16)).toEqual(mine);
  }, 60_000);

  it('killed with SIGKILL after step 30 and resumed: the same 50 losses, gradient norms and final weights', async () => {
    expect(trained().status).toBe(0);
    const killed = join(tmp, 'killed');
    // run until the checkpoint of step 30 is written and a step past it has started, then SIGKILL
    await new Promise<void>((done, fail) => {
      const p = spawn(process.execPath, [KILN, ...RUN, '--out', killed, '--save-every', '10'], { cwd: ROOT, env: ENV });
      let err = '';
      p.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/step 3[2-9]\/50/.test(err)) p.kill('SIGKILL');
      });
      p.on('exit', (code, signal) => (signal === 'SIGKILL' ? done() : fail(new Error(`not killed (exit ${code}): ${err}`))));
    });
    expect(metrics(killed).filter((l) => l.loss !== undefined).length).toBeLessThan(50);
    const r = kiln([...RUN, '--out', killed, '--save-every', '10', '--resume', killed]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resumed at step (30|40)/);
    expect(numbers(killed)).toEqual(numbers(out));
    expect(readFileSync(join(killed, 'model.gguf')).equals(readFileSync(join(out, 'model.gguf')))).toBe(true);
  }, 240_000);

  it('refuses, in one line and before anything is written: empty data, too little data, a seq past the context, a folder holding a run, a resume of another run', () => {
    expect(trained().status).toBe(0);
    const empty = join(tmp, 'empty.txt');
    writeFileSync(empty, '');
    const short = join(tmp, 'short.txt');
    writeFileSync(short, 'kiln');
    const cases: [string[], RegExp, number][] = [
      [['train', 'preset:tiny', '--data', empty, '--out', join(tmp, 'x1')], /^error K1023: .*empty\.txt: the file is empty$/, 1],
      [['train', 'preset:tiny', '--data', short, '--out', join(tmp, 'x2')], /^error K1023: the training data has \d+ tokens?; one window of --seq 32 needs 33$/, 1],
      [['train', 'preset:tiny', '--data', 'README.md', '--seq', '64', '--out', join(tmp, 'x3')], /^error K1016: --seq 64 is past the model's context \(maxSeqLen 32\)$/, 2],
      [[...RUN, '--out', out], /^error K1016: .*tiny-trained already holds a training run: continue it with --resume .*, or give another --out$/, 2],
      [['train', 'preset:tiny', '--data', 'README.md', '--backend', 'gpu', '--dropout', '0.1', '--out', join(tmp, 'x5')], /^error K1016: --dropout: the gpu backend cannot draw dropout masks .*train with --backend wasm or js, or without --dropout$/, 2],
      [[...RUN, '--batch', '4', '--out', join(tmp, 'x4'), '--resume', out], /^error K1025: --resume .*step-000050: made by another run \(batch: 8 → 4\)$/, 1],
    ];
    for (const [args, want, code] of cases) {
      const r = kiln(args);
      expect(r.stderr.trimEnd().split('\n').at(-1), args.join(' ')).toMatch(want);
      expect(r.status, r.stderr).toBe(code);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    for (const x of ['x1', 'x2', 'x3', 'x4', 'x5']) expect(existsSync(join(tmp, x, 'model.gguf'))).toBe(false);
  }, 120_000);

  it('a loss that becomes NaN stops the run at that step and keeps the last checkpoint; a finished run resumes for longer', () => {
    const dir = join(tmp, 'nan');
    const args = ['train', 'preset:tiny', '--data', 'README.md', '--steps', '10', '--warmup', '0', '--clip', '0', '--save-every', '1', '--eval-every', '5', '--backend', 'js', '--out', dir];
    const r = kiln([...args, '--lr', '1e30']);
    expect(r.status).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toMatch(/^error K1024: training stopped at step \d+: (the (loss|gradient norm) is (NaN|Infinity|-Infinity)|its update made '[^']+' hold values that are not finite) \(lr [\d.e+]+\); (the weights were not updated|these weights were not saved)\. The last checkpoint saved is .*step-\d+: --resume it with a lower --lr or a --clip$/);
    expect(existsSync(join(dir, 'model.gguf'))).toBe(false);
    expect(readdirSync(join(dir, 'checkpoints')).length).toBeGreaterThan(0);
    // a finished run resumed for longer, at another learning rate: it goes on, and says what changed
    const longer = join(tmp, 'longer');
    expect(trained().status).toBe(0);
    cpSync(out, longer, { recursive: true });
    const again = kiln([...RUN, '--steps', '60', '--lr', '2e-3', '--out', longer, '--save-every', '10', '--resume', longer]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/kiln: resuming with settings changed since the checkpoint \(steps: 50 → 60; lr: 0\.001 → 0\.002; minLr: 0\.0001 → 0\.0002; warmup: 5 → 6\): the losses from here differ from the first run's/);
    expect(metrics(longer).filter((l) => l.loss !== undefined).map((l) => l.step)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
  }, 120_000);
});
