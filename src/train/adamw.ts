/**
 * AdamW and global-norm gradient clipping, bit for bit as PyTorch 1.13 runs them on a CPU in
 * float32: `torch.optim.AdamW(foreach=False)` (`_single_tensor_adamw`) and
 * `torch.nn.utils.clip_grad_norm_`.
 *
 * Per parameter tensor, step t counted from 1 (Python doubles: lr, β, bias corrections; every
 * tensor operation is float32, its scalar operand cast to float32 first):
 *
 *   w ← w · f32(1 − lr·wd)                         param.mul_(1 - lr * weight_decay)
 *   m ← fma(g, f32(1 − β1), m · f32(β1))            exp_avg.mul_(β1).add_(grad, alpha=1 - β1)
 *   v ← fma(f32(1 − β2)·g, g, v · f32(β2))          exp_avg_sq.mul_(β2).addcmul_(grad, grad, value=1 - β2)
 *   d ← √v / f32(√(1 − β2^t)) + f32(eps)            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
 *   w ← w + (f32(−lr / (1 − β1^t)) · m) / d         param.addcdiv_(exp_avg, denom, value=-step_size)
 *
 * The two fma's are single roundings: ATen's AVX2 kernels (the capability Debian's torch uses on
 * this machine kind) compute `add` with alpha as `vec::fmadd(b, alpha, a)`, and the compiler
 * contracts addcmul's multiply-add the same way, tails included. Rounding after each of those
 * operations instead differs from torch in the last bit of about one m in five and one v in
 * ten; with the fma's every bit of w, m and v agreed over 5 steps of 5, 1,037 and 4,099
 * elements (checked against torch 1.13.1 here; tests/train-adamw.test.ts keeps such a case).
 * Weight decay is per tensor (kiln decays matrices only, as llama2.c does); a tensor without it
 * skips the multiply by exactly 1.
 *
 * clip_grad_norm_: the norm of the per-tensor norms, each `torch.norm` reduced as ATen reduces a
 * contiguous float32 tensor: 8 float lanes (one AVX2 vector) of fused g·g + acc, the lanes summed
 * in order, the tail fused into lane 0's sum, then √ rounded to float32. coef = f32(1 / (norm +
 * f32(1e-6))) · f32(max_norm) (a Python scalar divided by a tensor is the reciprocal times it),
 * clamped at 1; the gradients are multiplied by it, which at 1 changes nothing, so they are left
 * alone then. The norm before clipping is returned.
 */
import { InternalError, KilnError } from '../../graph/errors.js';
import type { AdamWConstants, UpdateKernels } from './update-kernels.js';

const f32 = Math.fround;

// ─── float32 arithmetic that torch's kernels do fused ──────────────────────────────────────

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** The float32 after x (toward +∞); x is a finite float32. */
function nextUp(x: number): number {
  if (x === 0) return 2 ** -149;
  scratchF[0] = x;
  scratchU[0] = x > 0 ? scratchU[0]! + 1 : scratchU[0]! - 1;
  return scratchF[0]!;
}

/**
 * fmaf(a, b, c) for float32 a, b, c: a·b + c rounded once to float32. a·b is exact in a double
 * (48 significant bits) and TwoSum gives the error of the double sum exactly, so the only case
 * in which rounding that sum to float32 could differ from rounding the exact value — the sum lying
 * exactly halfway between two float32s while the exact value does not — is detected and resolved
 * by the error's sign.
 */
export function fmaf(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv);
  const r = f32(s);
  if (err === 0 || r === s || !Number.isFinite(r)) return r;
  const other = s > r ? nextUp(r) : -nextUp(-r);
  if ((r + other) / 2 !== s) return r; // not a tie: s rounds as the exact value does
  return err > 0 === other > r ? other : r;
}

// ─── AdamW ──────────────────────────────────────────────────────────────────────────────────

export interface AdamWOptions {
  /** 0.9 unless given */
  beta1?: number;
  /** 0.999 unless given (torch's default; llama2.c trains with 0.95) */
  beta2?: number;
  /** 1e-8 unless given */
  eps?: number;
  /** decoupled weight decay for the tensors that take it; 0.01 unless given (torch's default) */
  weightDecay?: number;
}

export interface ParamSpec {
  readonly name: string;
  /** elements */
  readonly size: number;
  /** whether weight decay applies (see `decays`) */
  readonly decay: boolean;
}

/** kiln's rule: weight decay for matrices (rank ≥ 2), none for norm weights and biases. */
export const decays = (shape: readonly number[]): boolean => shape.length >= 2;

/** The optimizer's state for a checkpoint: the step count and both moments, per tensor in order. */
export interface AdamWState {
  readonly kind: 'kiln.adamw';
  /** updates done; the next one is step `step + 1` */
  readonly step: number;
  readonly names: readonly string[];
  readonly m: readonly Float32Array[];
  readonly v: readonly Float32Array[];
}

function checkHyper(o: Required<AdamWOptions>): void {
  const bad = (flag: string, v: number, rule: string): KilnError => new KilnError('K1016', `--${flag} (${v}) must be ${rule}`);
  if (!(o.beta1 >= 0 && o.beta1 < 1)) throw bad('beta1', o.beta1, 'at least 0 and less than 1');
  if (!(o.beta2 >= 0 && o.beta2 < 1)) throw bad('beta2', o.beta2, 'at least 0 and less than 1');
  if (!(o.eps >= 0 && Number.isFinite(o.eps))) throw bad('eps', o.eps, 'a number ≥ 0');
  if (!(o.weightDecay >= 0 && Number.isFinite(o.weightDecay))) throw bad('weight-decay', o.weightDecay, 'a number ≥ 0');
}

export class AdamW {
  readonly options: Readonly<Required<AdamWOptions>>;
  readonly params: readonly ParamSpec[];
  private t = 0;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  /**
   * `kernels`: run the update there (update-kernels.ts, the same bits), over moments held in its
   * memory; the weights and gradients given to `update` must live there too. Without: these loops.
   */
  constructor(params: readonly ParamSpec[], opts: AdamWOptions = {}, private readonly kernels?: UpdateKernels) {
    const o = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, ...opts };
    checkHyper(o);
    this.options = o;
    this.params = params.map((p) => ({ ...p }));
    const zeros = (n: number) => (kernels ? kernels.alloc(n) : new Float32Array(n));
    this.m = params.map((p) => zeros(p.size));
    this.v = params.map((p) => zeros(p.size));
  }

  /** updates done so far */
  get step(): number {
    return this.t;
  }

  /** One update of every tensor in place, at learning rate `lr` (the schedule's, this step). */
  update(weights: readonly Float32Array[], grads: readonly Float32Array[], lr: number): void {
    if (weights.length !== this.params.length || grads.length !== this.params.length)
      throw new InternalError(`AdamW.update: ${weights.length} weights and ${grads.length} gradients for ${this.params.length} tensors`);
    if (!(lr >= 0 && Number.isFinite(lr))) throw new InternalError(`AdamW.update: learning rate ${lr}`);
    const { beta1, beta2, eps, weightDecay } = this.options;
    const t = ++this.t;
    // Python doubles, as torch computes them, each cast to float32 where a kernel takes it.
    const c: AdamWConstants = {
      b1: f32(beta1),
      c1: f32(1 - beta1),
      b2: f32(beta2),
      c2: f32(1 - beta2),
      negStepSize: f32(-(lr / (1 - beta1 ** t))),
      bc2Sqrt: f32(Math.sqrt(1 - beta2 ** t)),
      eps: f32(eps),
      keep: f32(1 - lr * weightDecay),
    };
    const { b1, c1, b2, c2, negStepSize, bc2Sqrt, keep, eps: epsF } = c;
    for (let k = 0; k < this.params.length; k++) {
      const spec = this.params[k]!;
      const w = weights[k]!;
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (w.length !== spec.size || g.length !== spec.size)
        throw new InternalError(`AdamW.update: '${spec.name}' has ${w.length} weights and ${g.length} gradients, not ${spec.size}`);
      const decay = spec.decay && weightDecay !== 0;
      if (this.kernels) {
        this.kernels.adamw(w, g, m, v, decay, c);
        continue;
      }
      for (let i = 0; i < w.length; i++) {
        const gi = g[i]!;
        const wi = decay ? f32(w[i]! * keep) : w[i]!;
        const mi = fmaf(gi, c1, f32(m[i]! * b1));
        const vi = fmaf(f32(c2 * gi), gi, f32(v[i]! * b2));
        const denom = f32(f32(f32(Math.sqrt(vi)) / bc2Sqrt) + epsF);
        m[i] = mi;
        v[i] = vi;
        w[i] = f32(wi + f32(f32(negStepSize * mi) / denom));
      }
    }
  }

  /** The step count and the moments (the optimizer's own arrays, not copies: write them out before the next update). */
  state(): AdamWState {
    return { kind: 'kiln.adamw', step: this.t, names: this.params.map((p) => p.name), m: this.m, v: this.v };
  }

  /** Continue from a checkpoint's state; one of other tensors is a K1025 naming the first difference. */
  restore(s: AdamWState): void {
    const bad = (msg: string): KilnError => new KilnError('K1025', `the checkpoint's optimizer state ${msg}`);
    if (s.kind !== 'kiln.adamw') throw bad('is not kiln AdamW state');
    if (!Number.isSafeInteger(s.step) || s.step < 0) throw bad(`has step ${s.step}, not a whole number ≥ 0`);
    if (s.names.length !== this.params.length || s.m.length !== this.params.length || s.v.length !== this.params.length)
      throw bad(`holds ${s.names.length} tensors; this model has ${this.params.length}`);
    this.params.forEach((p, k) => {
      if (s.names[k] !== p.name) throw bad(`has '${s.names[k]}' where this model has '${p.name}' (tensor ${k})`);
      for (const [what, a] of [['m', s.m[k]!], ['v', s.v[k]!]] as const)
        if (a.length !== p.size) throw bad(`has ${a.length} elements of ${what} for '${p.name}', which has ${p.size}`);
    });
    this.params.forEach((_, k) => {
      this.m[k]!.set(s.m[k]!);
      this.v[k]!.set(s.v[k]!);
    });
    this.t = s.step;
  }
}

// ─── gradient clipping ──────────────────────────────────────────────────────────────────────

/** ATen's AVX2 float vector width. */
const LANES = 8;

/** ‖x‖₂ as `torch.norm` computes it for a contiguous float32 CPU tensor (see the header). */
export function normF32(x: ArrayLike<number>): number {
  const acc = new Float64Array(LANES); // holds float32 values
  const body = x.length - (x.length % LANES);
  let i = 0;
  for (; i < body; i += LANES) for (let j = 0; j < LANES; j++) acc[j] = fmaf(x[i + j]!, x[i + j]!, acc[j]!);
  let sum = acc[0]!;
  for (let j = 1; j < LANES; j++) sum = f32(sum + acc[j]!);
  for (; i < x.length; i++) sum = fmaf(x[i]!, x[i]!, sum);
  return f32(Math.sqrt(sum));
}

/** The global gradient norm: the norm of every tensor's norm (torch 1.13's order), a float32; `kernels`: each tensor's there. */
export function gradNorm(grads: readonly Float32Array[], kernels?: UpdateKernels): number {
  if (grads.length === 0) return 0;
  return normF32(grads.map((g) => (kernels ? kernels.norm(g) : normF32(g))));
}

/**
 * clip_grad_norm_(max_norm): scales every gradient in place by max_norm / (norm + 1e-6) when that
 * is below 1, and returns the norm before clipping. A non-finite norm leaves the gradients as they
 * are (torch would multiply them by NaN): the caller sees it in the result and stops.
 */
export function clipGradNorm(grads: readonly Float32Array[], maxNorm: number, kernels?: UpdateKernels): number {
  if (!(maxNorm > 0 && Number.isFinite(maxNorm))) throw new KilnError('K1016', `--clip (${maxNorm}) must be a number above 0`);
  const norm = gradNorm(grads, kernels);
  const coef = f32(f32(1 / f32(norm + f32(1e-6))) * f32(maxNorm));
  if (Number.isFinite(norm) && coef < 1)
    for (const g of grads) {
      if (kernels) kernels.mul(g, coef);
      else for (let i = 0; i < g.length; i++) g[i] = f32(g[i]! * coef);
    }
  return norm;
}
