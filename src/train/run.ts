/**
 * A training run: the loop around the compiled step (step.ts). Each optimizer step draws
 * `gradAccum` micro-batches of `batch` windows from the data cursor, sums every row's gradient,
 * scales the sum to the mean over the rows, clips the global norm and applies AdamW at the
 * schedule's learning rate, then binds the new weights. Validation and checkpoints happen
 * between steps; a resumed run restores the weights, the moments, the step and the data cursor,
 * so its losses are the uninterrupted run's, bit for bit, on the same backend and threads.
 *
 * The loss and the gradient norm are checked every step before the update: a NaN or an infinity
 * stops the run (K1024) naming the step, with the weights of the step before and the last
 * checkpoint untouched.
 */
import type { Backend } from '../../backends/backend.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { AdamW, clipGradNorm, decays, gradNorm } from './adamw.js';
import { type LoadedCheckpoint, saveCheckpoint, settingsDiffer } from './checkpoint.js';
import { type CursorState, DataCursor, type TrainingData } from './data.js';
import { type Schedule, checkSchedule, learningRate } from './schedule.js';
import type { EvalRecord as MetricsEval, StepRecord } from './metrics.js';
import { TrainingPrograms } from './step.js';
import { UpdateKernels } from './update-kernels.js';

export interface TrainSettings {
  readonly batch: number;
  readonly seq: number;
  readonly gradAccum: number;
  readonly steps: number;
  readonly lr: number;
  readonly minLr: number;
  readonly warmup: number;
  readonly weightDecay: number;
  /** 0: no clipping (the norm is still measured). */
  readonly clip: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Dropout on every residual branch while training (0: none). */
  readonly dropout: number;
  readonly seed: number;
  readonly shuffle: boolean;
  /** Validate every n steps (0: only after the last). */
  readonly evalEvery: number;
  /** Validation micro-batches per evaluation. */
  readonly evalBatches: number;
  /** Save a checkpoint every n steps (0: never). */
  readonly saveEvery: number;
}

export type { StepRecord } from './metrics.js';

export interface EvalRecord extends MetricsEval {
  /** Validation windows the loss is the mean over. */
  readonly windows: number;
}

export interface TrainHooks {
  onStep?(r: StepRecord): void;
  onEval?(e: EvalRecord, weights: Readonly<Record<string, Float32Array>>): void | Promise<void>;
  onSave?(dir: string, step: number): void;
  onNote?(message: string): void;
}

export interface TrainRun {
  readonly model: Graph;
  /** Starting weights (given the trained ones at the end; the run trains a copy). */
  readonly weights: Record<string, Float32Array>;
  readonly backend: Backend;
  readonly data: TrainingData;
  readonly settings: TrainSettings;
  /** What must also match to resume: the model's config, the data's fingerprint. */
  readonly identity: Readonly<Record<string, unknown>>;
  /** Where checkpoints go (`<outDir>/checkpoints/step-N`). */
  readonly outDir: string;
  readonly resume?: LoadedCheckpoint;
  readonly hooks?: TrainHooks;
  /** Compiled programs to reuse (the bench); made here otherwise. */
  readonly programs?: TrainingPrograms;
}

export interface TrainResult {
  readonly weights: Record<string, Float32Array>;
  readonly steps: readonly StepRecord[];
  readonly evals: readonly EvalRecord[];
  readonly startStep: number;
  readonly peakBytes: number;
}

/**
 * What a checkpoint records of its run. A resume must have the same model, data, window shape,
 * seed and order (else the data cursor and the weights mean something else: K1025); the
 * optimizer's settings and the run's length may change (to recover from a divergence with a
 * lower --lr, or to train longer), with a note, since the losses then differ from the first run's.
 */
export const RESUME_MAY_CHANGE = ['steps', 'lr', 'minLr', 'warmup', 'weightDecay', 'clip', 'beta1', 'beta2', 'eps', 'dropout'] as const;

export function resumeKey(r: Pick<TrainRun, 'settings' | 'identity'>): Record<string, unknown> {
  const { evalEvery: _e, evalBatches: _b, saveEvery: _s, ...numeric } = r.settings;
  return { ...numeric, ...r.identity };
}

/**
 * Whether checkpoint `ck` can resume run `r`: a K1025 naming what differs, else the note on what
 * may change (undefined when nothing did). Cheap: the CLI asks before it compiles anything.
 */
export function checkResume(ck: LoadedCheckpoint, r: Pick<TrainRun, 'settings' | 'identity'>): string | undefined {
  const loose = new Set<string>(RESUME_MAY_CHANGE);
  const diff = settingsDiffer(ck.settings, resumeKey(r));
  const fatal = diff.filter((d) => !loose.has(d.slice(0, d.indexOf(':'))));
  if (fatal.length) throw new KilnError('K1025', `--resume ${ck.dir}: made by another run (${fatal.join('; ')})`);
  if (ck.step >= r.settings.steps) throw new KilnError('K1025', `--resume ${ck.dir}: that run already finished its ${r.settings.steps} steps`);
  return diff.length ? `resuming with settings changed since the checkpoint (${diff.join('; ')}): the losses from here differ from the first run's` : undefined;
}

/** The mean validation loss over at most `batches` micro-batches of the held-out windows. */
export function validationLoss(p: TrainingPrograms, data: TrainingData, batch: number, batches: number): { loss: number; windows: number } | undefined {
  if (!data.val) return undefined;
  let sum = 0;
  let n = 0;
  for (const b of data.val.batches(batch, batches))
    for (let i = 0; i < b.inputs.length; i++) {
      sum += p.rowLoss({ inputs: b.inputs[i]!, targets: b.targets[i]! });
      n++;
    }
  return { loss: sum / n, windows: n };
}

export async function train(run: TrainRun): Promise<TrainResult> {
  const s = run.settings;
  const schedule: Schedule = { lr: s.lr, minLr: s.minLr, warmup: s.warmup, steps: s.steps };
  checkSchedule(schedule);
  if (s.clip < 0 || !Number.isFinite(s.clip)) throw new KilnError('K1016', `--clip (${s.clip}) must be a number ≥ 0 (0: no clipping)`);
  const programs = run.programs ?? (await TrainingPrograms.create(run.model, run.backend, s.seq, { dropout: s.dropout }));
  if (programs.dropout !== s.dropout) throw new KilnError('K1017', `training: the programs were compiled with dropout ${programs.dropout}, the settings say ${s.dropout}`);
  const params = programs.params;
  for (const p of params) if (!run.weights[p.name]) throw new KilnError('K1017', `training: no weights for param '${p.name}'`);
  // Per param, the weights, the step's gradient sum, one row's gradients (TrainingPrograms allocates
  // them, after sumWith) and both moments live in the update kernels' memory, updated there in
  // place; the caller's arrays get the weights back at the end.
  const sizes = params.map((p) => run.weights[p.name]!.length);
  const kernels = await UpdateKernels.create([...sizes, ...sizes, ...sizes, ...sizes, ...sizes]);
  const weights: Record<string, Float32Array> = Object.fromEntries(params.map((p, k) => [p.name, kernels.alloc(sizes[k]!)]));
  for (const p of params) weights[p.name]!.set(run.weights[p.name]!);
  const opt = new AdamW(
    params.map((p, k) => ({ name: p.name, size: sizes[k]!, decay: decays(p.shape) })),
    { beta1: s.beta1, beta2: s.beta2, eps: s.eps, weightDecay: s.weightDecay },
    kernels,
  );
  programs.sumWith(kernels);
  const cursor = new DataCursor(run.data.train, { shuffle: s.shuffle, seed: s.seed });
  let start = 0;
  let tokens = 0;
  if (run.resume) {
    const ck = run.resume;
    const note = checkResume(ck, run);
    if (note) run.hooks?.onNote?.(note);
    for (const p of params) {
      const w = ck.tensors.params[p.name];
      if (!w || w.length !== weights[p.name]!.length) throw new KilnError('K1025', `--resume ${ck.dir}: no weights of the right size for '${p.name}'`);
      weights[p.name]!.set(w);
    }
    opt.restore({ kind: 'kiln.adamw', step: ck.step, names: params.map((p) => p.name), m: params.map((p) => ck.tensors.m[p.name]!), v: params.map((p) => ck.tensors.v[p.name]!) });
    cursor.restore(ck.progress['cursor'] as CursorState);
    start = ck.step;
    tokens = Number(ck.progress['tokens'] ?? 0);
  }
  programs.setWeights(weights);

  const grads: Record<string, Float32Array> = Object.fromEntries(params.map((p, k) => [p.name, kernels.alloc(sizes[k]!)]));
  const gradList = params.map((p) => grads[p.name]!);
  const weightList = params.map((p) => weights[p.name]!);
  const rows = s.batch * s.gradAccum;
  const steps: StepRecord[] = [];
  const evals: EvalRecord[] = [];
  let lastSaved: string | undefined = run.resume?.dir;

  const save = (step: number) => {
    const st = opt.state();
    const dir = saveCheckpoint(
      run.outDir,
      params,
      { params: weights, m: Object.fromEntries(params.map((p, k) => [p.name, st.m[k]!])), v: Object.fromEntries(params.map((p, k) => [p.name, st.v[k]!])) },
      { step, settings: resumeKey(run), progress: { cursor: cursor.state(), tokens } },
    );
    lastSaved = dir;
    run.hooks?.onSave?.(dir, step);
  };
  /** The K1024 that stops a run whose numbers stopped being finite. */
  const stopped = (what: string) =>
    new KilnError('K1024', `training stopped ${what}. ${lastSaved ? `The last checkpoint saved is ${lastSaved}: --resume it with a lower --lr or a --clip` : 'No checkpoint was saved (--save-every keeps one)'}`);
  const evaluate = async (step: number) => {
    const v = validationLoss(programs, run.data, s.batch, s.evalBatches);
    if (!v) return;
    if (!Number.isFinite(v.loss)) throw stopped(`after step ${step}: the validation loss is ${v.loss} (lr ${learningRate(schedule, step - 1).toPrecision(3)}); these weights were not saved`);
    const e = { step, val_loss: v.loss, val_ppl: Math.exp(v.loss), windows: v.windows };
    evals.push(e);
    await run.hooks?.onEval?.(e, weights);
  };

  for (let step = start; step < s.steps; step++) {
    const t0 = performance.now();
    let lossSum = 0;
    for (let a = 0; a < s.gradAccum; a++) {
      const b = cursor.next(s.batch);
      for (let i = 0; i < b.inputs.length; i++)
        lossSum += programs.accumulate({ inputs: b.inputs[i]!, targets: b.targets[i]! }, grads, [s.seed, (step * s.gradAccum + a) * s.batch + i], a === 0 && i === 0);
    }
    const t1 = performance.now();
    const scale = 1 / rows;
    for (const g of gradList) kernels.scale(g, scale);
    const loss = lossSum / rows;
    const lr = learningRate(schedule, step);
    const norm = s.clip > 0 ? clipGradNorm(gradList, s.clip, kernels) : gradNorm(gradList, kernels);
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      const what = !Number.isFinite(loss) ? `the loss is ${loss}` : `the gradient norm is ${norm}`;
      throw stopped(`at step ${step + 1}: ${what} (lr ${lr.toPrecision(3)}); the weights were not updated`);
    }
    opt.update(weightList, gradList, lr);
    const bad = params.find((p) => !kernels.allFinite(weights[p.name]!));
    if (bad) throw stopped(`at step ${step + 1}: its update made '${bad.name}' hold values that are not finite (lr ${lr.toPrecision(3)}); these weights were not saved`);
    programs.setWeights(weights);
    tokens += rows * s.seq;
    const ms = performance.now() - t0;
    // `step` counts steps done (1 after the first), as evaluations and checkpoints do
    // where the step's time went: the programs (forward and backward of every row, the sums) and the update
    const r: StepRecord = { step: step + 1, loss, lr, grad_norm: norm, tokens, tokens_per_s: (rows * s.seq * 1000) / ms, ms, compute_ms: t1 - t0, update_ms: performance.now() - t1 };
    steps.push(r);
    run.hooks?.onStep?.(r);
    const done = step + 1;
    if (s.evalEvery > 0 && done % s.evalEvery === 0 && done < s.steps) await evaluate(done);
    if (s.saveEvery > 0 && done % s.saveEvery === 0 && done < s.steps) save(done);
  }
  await evaluate(s.steps);
  if (s.saveEvery > 0) save(s.steps);
  const peakBytes = Math.max(programs.grad.plan.arenaBytes, programs.loss.plan.arenaBytes);
  if (!run.programs) programs.dispose();
  for (const p of params) run.weights[p.name]!.set(weights[p.name]!);
  return { weights: run.weights, steps, evals, startStep: start, peakBytes };
}
