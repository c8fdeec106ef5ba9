/**
 * The learning rate of step s (from 0) of a run of N steps: a linear warmup over W steps, then a
 * half cosine from lr down to minLr over the remaining N − W steps (llama2.c's and nanoGPT's
 * schedule, with the warmup reaching lr at its last step rather than one after it):
 *
 *   s < W:  lr · (s + 1) / W
 *   s ≥ W:  minLr + (lr − minLr) · ½ · (1 + cos(π · (s − W) / (N − W)))
 *
 * W = 0 is no warmup: step 0 runs at lr. The last step runs just above minLr, never at it.
 * Values are doubles; AdamW rounds what it needs to float32 as PyTorch does.
 */
import { InternalError, KilnError } from '../../graph/errors.js';

export interface Schedule {
  /** the peak learning rate, reached at the end of the warmup */
  readonly lr: number;
  /** the rate the cosine ends at; 0 unless given */
  readonly minLr?: number;
  /** warmup steps W, 0 for none */
  readonly warmup: number;
  /** the run's length N in steps */
  readonly steps: number;
}

const bad = (msg: string): KilnError => new KilnError('K1016', msg);

/** Refuses a schedule that cannot run, naming the command-line values that disagree. */
export function checkSchedule(s: Schedule): void {
  const minLr = s.minLr ?? 0;
  if (!Number.isSafeInteger(s.steps) || s.steps < 1) throw bad(`--steps (${s.steps}) must be a whole number ≥ 1`);
  if (!Number.isSafeInteger(s.warmup) || s.warmup < 0) throw bad(`--warmup (${s.warmup}) must be a whole number ≥ 0`);
  if (s.warmup >= s.steps) throw bad(`--warmup (${s.warmup}) must be less than --steps (${s.steps}): the cosine needs at least one step after the warmup`);
  if (!Number.isFinite(s.lr) || s.lr <= 0) throw bad(`--lr (${s.lr}) must be a number above 0`);
  if (!Number.isFinite(minLr) || minLr < 0) throw bad(`--min-lr (${minLr}) must be a number ≥ 0`);
  if (minLr > s.lr) throw bad(`--min-lr (${minLr}) must not be above --lr (${s.lr})`);
}

/** The learning rate of step `step` (0 ≤ step < steps); the schedule must have passed `checkSchedule`. */
export function learningRate(s: Schedule, step: number): number {
  if (!Number.isSafeInteger(step) || step < 0 || step >= s.steps) throw new InternalError(`learningRate: step ${step} outside [0, ${s.steps})`);
  const minLr = s.minLr ?? 0;
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const progress = (step - s.warmup) / (s.steps - s.warmup);
  return minLr + (s.lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
