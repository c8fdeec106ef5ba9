/**
 * `kiln train <model> --data FILE…`: the whole training pipeline from the command line. The model
 * is anything kiln loads: a model file or preset starts from fresh seeded weights (train/init.ts),
 * a checkpoint is fine-tuned from its own. The data is tokenised with the model's tokenizer (a
 * model without one gets one made from the data, sized to its vocabulary: train/vocab.ts), packed
 * into windows, split, and drawn in a seeded order. Everything the run writes goes into --out:
 *
 *   model.gguf, safetensors/       the trained model with its tokenizer
 *   metrics.jsonl                  one line per step, one per evaluation
 *   events.out.tfevents.*          the same curves for TensorBoard
 *   loss.svg                       train and validation loss
 *   checkpoints/step-N/            with --save-every: what --resume needs to continue exactly
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { commas, humanBytes } from './format.js';
import { isCheckpointPath, loadModel } from './load.js';

export interface TrainCliOptions {
  readonly data: string[];
  readonly val?: string[];
  readonly valFraction: number;
  readonly out?: string;
  readonly tokenizer?: string;
  readonly stripHtml?: boolean;
  readonly normalizeWhitespace?: boolean;
  readonly batch: number;
  readonly seq?: number;
  readonly gradAccum: number;
  readonly steps?: number;
  readonly tokens?: number;
  readonly lr?: number;
  readonly minLr?: number;
  readonly warmup?: number;
  readonly weightDecay: number;
  readonly dropout: number;
  readonly clip: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly evalEvery?: number;
  readonly evalBatches?: number;
  readonly saveEvery?: number;
  readonly resume?: string;
  readonly backend: string;
  readonly typecheck?: boolean;
}

const usage = (msg: string) => new KilnError('K1016', msg);

function checkOptions(o: TrainCliOptions): void {
  if (o.steps !== undefined && o.tokens !== undefined) throw usage('give --steps or --tokens, not both');
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw usage(`--val-fraction (${o.valFraction}) must be at least 0 and less than 1`);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw usage(`--dropout (${o.dropout}) must be at least 0 and less than 1`);
  if (o.backend === 'gpu' && o.dropout > 0) throw usage('--dropout: the gpu backend cannot draw dropout masks (their hash needs integer bit operations, which WebGL1 shaders lack); train with --backend wasm or js, or without --dropout');
  if (o.lr !== undefined && !(o.lr > 0)) throw usage(`--lr (${o.lr}) must be a number above 0`);
}

/** Where a run's files go: --out, else the folder --resume names, else out/<model>-trained. */
function outFolder(o: TrainCliOptions, g: Graph): string {
  if (o.out !== undefined) return o.out;
  if (o.resume !== undefined) {
    const r = resolve(o.resume);
    return basename(dirname(r)) === 'checkpoints' ? dirname(dirname(r)) : r;
  }
  return join('out', `${g.name}-trained`);
}

export async function trainCommand(spec: string, o: TrainCliOptions): Promise<void> {
  checkOptions(o);
  const isCheckpoint = isCheckpointPath(spec);
  if (o.tokenizer !== undefined && !isCheckpoint) throw usage(`--tokenizer applies to checkpoints; ${spec} is not one (a model without a tokenizer gets one made from the data)`);
  const { graph: g, checkpoint, tokenizer: ckTokenizer } = await loadModel(spec, { typecheck: o.typecheck !== false, ...(o.tokenizer !== undefined ? { tokenizer: o.tokenizer } : {}) });
  const llama = g.meta['llama'] as { maxSeqLen: number; vocabSize: number } | undefined;
  if (!llama) throw new KilnError('K1018', `kiln train saves LLaMA-family models (built with llama()); ${g.name} has no LLaMA config`);
  const seq = o.seq ?? Math.min(256, llama.maxSeqLen);
  if (seq > llama.maxSeqLen) throw usage(`--seq ${seq} is past the model's context (maxSeqLen ${llama.maxSeqLen})`);
  const outDir = outFolder(o, g);
  if (o.resume === undefined && existsSync(outDir) && readdirSync(outDir).some((f) => f === 'metrics.jsonl' || f === 'checkpoints'))
    throw usage(`${outDir} already holds a training run: continue it with --resume ${outDir}, or give another --out`);

  // the tokenizer and the data
  const { readTokens, splitData, describeData } = await import('../train/data.js');
  const clean = { ...(o.stripHtml ? { stripHtml: true } : {}), ...(o.normalizeWhitespace ? { normalizeWhitespace: true } : {}) };
  let tokenizerData: TokenizerData | undefined = ckTokenizer;
  if (!tokenizerData) {
    const texts: string[] = [];
    readTokens(o.data, { tokenize: (t) => (texts.push(t), []), bos: 0, vocabSize: llama.vocabSize, clean });
    if (texts.length) {
      const { vocabularyFromText } = await import('../train/vocab.js');
      tokenizerData = vocabularyFromText(texts.join('\n'), llama.vocabSize);
      process.stderr.write(`kiln: ${g.name} has no tokenizer: made one of ${commas(llama.vocabSize)} pieces from the data (saved with the model)\n`);
    }
  }
  const { Tokenizer } = await import('../tokenizer/index.js');
  const tok = tokenizerData ? Tokenizer.fromData(tokenizerData) : undefined;
  const read = (files: string[]) =>
    readTokens(files, {
      tokenize: (t) => {
        if (!tok) throw new KilnError('K1023', `${files.join(', ')}: text needs a tokenizer and ${g.name} has none (give token ids as a .json array)`);
        return tok.encode(t, { bos: false });
      },
      bos: tok?.bos ?? 1,
      vocabSize: llama.vocabSize,
      clean,
    });
  const stream = read(o.data);
  const valStream = o.val ? read(o.val) : undefined;
  const data = splitData(stream.ids, { seq, valFraction: o.valFraction, seed: o.seed, ...(valStream ? { val: valStream.ids, valName: o.val!.join(', ') } : {}) });
  process.stderr.write(`kiln: ${describeData(data, stream.files)}\n`);

  // the schedule; a fine-tune takes smaller steps than training from scratch
  const lr = o.lr ?? (checkpoint ? 1e-4 : 1e-3);
  if (o.lr === undefined) process.stderr.write(`kiln: --lr ${lr} (${checkpoint ? 'fine-tuning a checkpoint' : 'fresh weights'}; give --lr to change it)\n`);
  const perStep = o.batch * o.gradAccum * seq;
  const steps = o.steps ?? (o.tokens !== undefined ? Math.ceil(o.tokens / perStep) : 100);
  const warmup = o.warmup ?? Math.min(1000, Math.floor(steps / 10));
  const valBatches = data.val ? Math.ceil(data.val.count / o.batch) : 0;
  const settings = {
    batch: o.batch,
    seq,
    gradAccum: o.gradAccum,
    steps,
    lr,
    minLr: o.minLr ?? lr / 10,
    warmup,
    weightDecay: o.weightDecay,
    clip: o.clip,
    beta1: o.beta1,
    beta2: o.beta2,
    eps: o.eps,
    dropout: o.dropout,
    seed: o.seed,
    shuffle: o.shuffle,
    evalEvery: o.evalEvery ?? Math.max(1, Math.floor(steps / 10)),
    evalBatches: o.evalBatches ?? Math.min(8, Math.max(1, valBatches)),
    saveEvery: o.saveEvery ?? 0,
  };
  const { checkSchedule } = await import('../train/schedule.js');
  checkSchedule({ lr: settings.lr, minLr: settings.minLr, warmup: settings.warmup, steps: settings.steps });

  // weights, programs, resume
  const { loadLatestCheckpoint } = await import('../train/checkpoint.js');
  const resume = o.resume !== undefined ? loadLatestCheckpoint(o.resume) : undefined;
  const weights = checkpoint
    ? Object.fromEntries(Object.entries((await import('../formats/checkpoint.js')).checkpointWeights(checkpoint)).map(([k, v]) => [k, Float32Array.from(v)]))
    : (await import('../train/init.js')).trainingInit(g, o.seed);
  const { loadBackend } = await import('./backends.js');
  const backend = await loadBackend(o.backend);
  const { TrainingPrograms, trainableParams } = await import('../train/step.js');
  // what a checkpoint must share with this run to resume it, checked before the (long) compile
  const identity = { model: llama, params: trainableParams(g), train: { windows: data.train.count, tokens: data.tokens }, val: data.val?.count ?? 0 };
  if (resume) (await import('../train/run.js')).checkResume(resume, { settings, identity });
  process.stderr.write(`kiln: compiling the training step for the ${backend.name} backend…\n`);
  const programs = await TrainingPrograms.create(g, backend, seq, { dropout: o.dropout });
  const paramBytes = programs.params.reduce((a, p) => a + 4 * p.shape.reduce((x, y) => x * y, 1), 0);
  const arena = programs.grad.plan.arenaBytes;
  // on the host: the starting weights, and in the update kernels' memory the weights, the step's
  // gradient sum, one row's gradients and AdamW's two moments (run.ts)
  process.stderr.write(
    `kiln: memory: ${humanBytes(arena)} of intermediates per window (activations kept for the backward pass included), ` +
      `${humanBytes(paramBytes)} of weights, and five times that for the weights being trained, the gradients and AdamW moments: ${humanBytes(arena + 6 * paramBytes)}, ` +
      `beside the ${backend.name} backend's own copies of the weights\n`,
  );

  mkdirSync(outDir, { recursive: true });
  const { openMonitor } = await import('../train/monitor.js');
  const monitor = openMonitor(outDir, { steps, resumeStep: resume?.step, tokenizer: tok, model: g, seed: o.seed });
  const { train } = await import('../train/run.js');
  let result;
  try {
    result = await train({ model: g, weights, backend, data, settings, identity, outDir, programs, ...(resume ? { resume } : {}), hooks: monitor.hooks });
  } finally {
    programs.dispose();
    monitor.close();
  }
  const files = await (await import('../train/save.js')).saveTrainedModel(outDir, g, result.weights, tokenizerData);
  const last = result.steps.at(-1);
  const ev = result.evals.at(-1);
  process.stderr.write(
    `kiln: trained ${g.name} for ${steps - result.startStep} steps${result.startStep ? ` (resumed at step ${result.startStep})` : ''}` +
      `${last ? `: loss ${result.steps[0]!.loss.toFixed(4)} → ${last.loss.toFixed(4)}` : ''}` +
      `${ev ? `, validation loss ${ev.val_loss.toFixed(4)} (perplexity ${ev.val_ppl.toFixed(2)})` : ''}\n` +
      `kiln: wrote ${files.join(', ')}, ${monitor.files().join(', ')}\n`,
  );
}
