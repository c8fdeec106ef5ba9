/**
 * What a run shows and leaves behind while it trains: the progress line (stderr; rewritten in
 * place on a terminal, one line per step elsewhere), metrics.jsonl, a TensorBoard event file,
 * loss.svg redrawn after every evaluation and at the end, and a short sample after each
 * evaluation. A resumed run cuts metrics.jsonl back to its checkpoint's step, so the log of a run
 * killed and resumed equals the uninterrupted run's.
 */
import { join } from 'node:path';
import { jsBackend } from '../../backends/js/index.js';
import type { Graph } from '../../graph/graph.js';
import { Session } from '../runtime/session.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { MetricsLog, formatProgress, readMetrics } from './metrics.js';
import { writeLossPlot } from './plot.js';
import type { EvalRecord, TrainHooks } from './run.js';
import { EventWriter } from './tfevents.js';

export interface MonitorOptions {
  readonly steps: number;
  /** The checkpoint step a resumed run starts from. */
  readonly resumeStep?: number | undefined;
  /** For the samples; none without one. */
  readonly tokenizer?: Tokenizer | undefined;
  readonly model: Graph;
  readonly seed: number;
  /** Tokens per sample (default 48). */
  readonly sampleTokens?: number;
  readonly write?: (s: string) => void;
}

export interface Monitor {
  readonly hooks: TrainHooks;
  files(): string[];
  close(): void;
}

export function openMonitor(dir: string, o: MonitorOptions): Monitor {
  const write = o.write ?? ((s: string) => process.stderr.write(s));
  const tty = o.write === undefined && process.stderr.isTTY === true;
  const metricsPath = join(dir, 'metrics.jsonl');
  const plotPath = join(dir, 'loss.svg');
  const log = o.resumeStep !== undefined ? MetricsLog.resume(metricsPath, o.resumeStep) : MetricsLog.create(metricsPath);
  const events = EventWriter.create(dir);
  if (o.resumeStep !== undefined) events.sessionStart(o.resumeStep);
  const recent: number[] = [];
  let lineOpen = false;
  const endLine = () => {
    if (lineOpen) write('\n');
    lineOpen = false;
  };
  const plot = () => {
    const { steps, evals } = readMetrics(metricsPath);
    writeLossPlot(
      plotPath,
      steps.map((r) => ({ step: r.step, loss: r.loss })),
      evals.map((e) => ({ step: e.step, loss: e.val_loss })),
      { title: `${o.model.name}: loss per step` },
    );
  };
  const sample = async (weights: Readonly<Record<string, Float32Array>>): Promise<string | undefined> => {
    const tok = o.tokenizer;
    if (!tok) return undefined;
    const context = Math.min(64, Number((o.model.meta['llama'] as { maxSeqLen: number }).maxSeqLen));
    const s = await Session.create(o.model, { backend: jsBackend, weights, maxSeqLen: context });
    try {
      const ids: number[] = [];
      for await (const step of s.generate([tok.bos], { maxTokens: Math.min(o.sampleTokens ?? 48, context - 1), temperature: 0.8, seed: o.seed, stopTokens: [tok.eos] })) ids.push(step.token);
      return tok.decode(ids);
    } finally {
      s.dispose();
    }
  };
  const hooks: TrainHooks = {
    onStep(r) {
      log.step(r);
      events.scalars(r.step, { 'train/loss': r.loss, 'train/lr': r.lr, 'train/grad_norm': r.grad_norm, 'train/tokens_per_s': r.tokens_per_s });
      recent.push((r.ms ?? 0) / 1000);
      if (recent.length > 10) recent.shift();
      const line = formatProgress({ done: r.step, steps: o.steps, loss: r.loss, lr: r.lr, tokensPerSecond: r.tokens_per_s, secondsPerStep: recent.reduce((a, b) => a + b, 0) / recent.length });
      if (tty) {
        write(`\r\x1b[2K${line}`);
        lineOpen = true;
      } else write(`${line}\n`);
    },
    async onEval(e: EvalRecord, weights) {
      log.eval(e.step, e.val_loss);
      events.scalars(e.step, { 'val/loss': e.val_loss, 'val/ppl': e.val_ppl });
      endLine();
      const text = await sample(weights);
      write(`eval at step ${e.step}: validation loss ${e.val_loss.toFixed(4)}, perplexity ${e.val_ppl.toFixed(2)} (${e.windows} windows)${text !== undefined ? `\n  sample: ${JSON.stringify(text)}` : ''}\n`);
      plot();
    },
    onNote(message) {
      endLine();
      write(`kiln: ${message}\n`);
    },
    onSave(dir, step) {
      endLine();
      write(`checkpoint at step ${step}: ${dir}\n`);
    },
  };
  return {
    hooks,
    files: () => [metricsPath, events.path, plotPath],
    close() {
      endLine();
      log.close();
      events.close();
      plot();
    },
  };
}
