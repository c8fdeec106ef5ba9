/**
 * Choosing the next token from the logits, in llama.cpp's sampler order (temperature last):
 *
 *   logits ─▶ repetition penalty ─▶ (temperature 0: argmax) ─▶ top-k ─▶ softmax ─▶ top-p
 *          ─▶ ÷ temperature over the kept tokens ─▶ softmax ─▶ draw with the seeded generator
 *
 * Repetition penalty (llama.cpp's rule, from the CTRL paper): for every distinct token among the
 * last `repeatLastN` of the history (64 by default, as llama.cpp; the prompt counts), a positive
 * logit is divided by the penalty and a negative one multiplied by it, so the token always
 * becomes less likely. Top-k keeps the k largest logits; top-p keeps the smallest set of most
 * likely tokens whose probabilities (at temperature 1) sum to at least p, and always one. Ties
 * everywhere go to the lower token id, so results do not depend on sort stability.
 */
import { KilnError } from '../../graph/errors.js';
import { mulberry32 } from './rng.js';

export interface SamplingOptions {
  /** 0 (the default) is greedy: argmax, no randomness. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens; 0 or undefined keeps all. */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens with total probability ≥ p; 1 or undefined keeps all. */
  readonly topP?: number;
  /** > 1 discourages tokens already in the history; 1 or undefined does nothing. */
  readonly repetitionPenalty?: number;
  /** How many of the last history tokens the penalty looks at (default 64; 0 turns it off). */
  readonly repeatLastN?: number;
}

/** llama.cpp's default penalty window (`--repeat-last-n`). */
export const REPEAT_LAST_N = 64;

/** The tokens the repetition penalty looks at: the last repeatLastN of the history. */
function penaltyWindow(history: readonly number[], opts: SamplingOptions): readonly number[] {
  const n = opts.repeatLastN ?? REPEAT_LAST_N;
  return n === 0 ? [] : history.slice(-n);
}

/** The index of the largest value; the lowest index among equals. NaN never wins. */
export function argmax(xs: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (v > bestV || (best < 0 && v === -Infinity)) {
      best = i;
      bestV = v;
    }
  }
  return Math.max(best, 0);
}

/** The logits with llama.cpp's repetition penalty applied to every distinct token of `history`. */
export function applyRepetitionPenalty(logits: ArrayLike<number>, history: readonly number[], penalty: number): Float64Array {
  const out = Float64Array.from(logits);
  if (penalty === 1) return out;
  for (const t of new Set(history)) {
    if (t < 0 || t >= out.length) continue;
    const v = out[t]!;
    out[t] = v > 0 ? v / penalty : v * penalty;
  }
  return out;
}

export function checkSamplingOptions(o: SamplingOptions, names: Partial<Record<keyof SamplingOptions, string>> = {}): void {
  const bad = (msg: string): never => {
    throw new KilnError('K1016', msg);
  };
  const name = (k: keyof SamplingOptions, plain: string) => names[k] ?? plain;
  const t = o.temperature ?? 0;
  if (!(t >= 0) || !Number.isFinite(t)) bad(`${name('temperature', 'temperature')} must be a finite number ≥ 0, got ${t}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) bad(`${name('topK', 'top-k')} must be an integer ≥ 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP >= 0 && o.topP <= 1)) bad(`${name('topP', 'top-p')} must be in [0, 1] (0 keeps the most likely token), got ${o.topP}`);
  if (o.repeatLastN !== undefined && (!Number.isInteger(o.repeatLastN) || o.repeatLastN < 0)) bad(`${name('repeatLastN', 'repeat-last-n')} must be an integer ≥ 0, got ${o.repeatLastN}`);
  const r = o.repetitionPenalty;
  if (r !== undefined && !(r > 0 && Number.isFinite(r))) bad(`${name('repetitionPenalty', 'repetition penalty')} must be a finite number > 0, got ${r}`);
}

/**
 * The distribution the sampler draws from (probabilities by token id; zero for tokens cut by top-k
 * or top-p). With temperature 0 it is all on the argmax.
 */
export function samplingDistribution(logits: ArrayLike<number>, opts: SamplingOptions = {}, history: readonly number[] = []): Float64Array {
  const z = applyRepetitionPenalty(logits, penaltyWindow(history, opts), opts.repetitionPenalty ?? 1);
  const n = z.length;
  const probs = new Float64Array(n);
  const t = opts.temperature ?? 0;
  if (t === 0) {
    probs[argmax(z)] = 1;
    return probs;
  }
  // Most likely first, ties to the lower id; NaN logits count as -Infinity.
  const order = Array.from({ length: n }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(z[i]!) ? -Infinity : z[i]!);
  order.sort((a, b) => key(b) - key(a) || a - b);
  const k = opts.topK && opts.topK > 0 ? Math.min(opts.topK, n) : n;
  const kept = order.slice(0, k);
  const top = key(kept[0]!);
  if (top === -Infinity) {
    probs[kept[0]!] = 1;
    return probs;
  }
  // top-p on the probabilities at temperature 1: keep tokens until their mass reaches p (at least one)
  const e1 = kept.map((i) => Math.exp(key(i) - top));
  const sum = e1.reduce((s, v) => s + v, 0);
  const p = opts.topP ?? 1;
  let cum = 0;
  let m = 0;
  while (m < kept.length) {
    cum += e1[m]! / sum;
    m++;
    if (cum >= p) break;
  }
  // then the temperature, over the tokens kept
  const e = kept.slice(0, m).map((i) => Math.exp((key(i) - top) / t));
  const mass = e.reduce((s, v) => s + v, 0);
  for (let j = 0; j < m; j++) probs[kept[j]!] = e[j]! / mass;
  return probs;
}

/** Draw an index from `probs` with a uniform number u ∈ [0, 1). */
export function drawFrom(probs: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (p <= 0) continue;
    last = i;
    cum += p;
    if (u < cum) return i;
  }
  return last; // rounding left cum a hair below 1
}

/** The generator keeps 32 bits of state: a larger seed would alias a smaller one in silence. */
export function checkSeed(seed: number, name = 'seed'): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new KilnError('K1016', `${name} must be an integer in [0, 4294967295] (the sampler's generator has 32 bits of state), got ${seed}`);
}

/** A sampler: same options, seed and inputs, same tokens. */
export class Sampler {
  private readonly next: () => number;
  constructor(
    readonly opts: SamplingOptions = {},
    seed = 0,
  ) {
    checkSamplingOptions(opts);
    checkSeed(seed);
    this.next = mulberry32(seed);
  }

  sample(logits: ArrayLike<number>, history: readonly number[] = []): number {
    if ((this.opts.temperature ?? 0) === 0) return argmax(applyRepetitionPenalty(logits, penaltyWindow(history, this.opts), this.opts.repetitionPenalty ?? 1));
    return drawFrom(samplingDistribution(logits, this.opts, history), this.next());
  }
}
