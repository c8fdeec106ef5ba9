/**
 * A Session runs a model token by token. `create` turns the full-sequence graph into a step graph
 * (the pipeline, with insert-kv-cache and lastLogitsOnly), compiles it twice — a prefill program
 * (seq symbolic) and a decode program (seq fixed at 1) — and owns what persists between steps:
 *
 *   cache.k.L, cache.v.L   Float32Array [maxSeqLen, nKvHeads, headDim] per layer (the KV state)
 *   position               how many tokens the cache holds (the next token's position)
 *   history                those tokens, so `feed` can tell what it must recompute
 *
 * A step runs `tokens` at positions [position, position + n): the program writes their K and V
 * rows into the caches at `pos` and returns the new caches as `state:<name>` outputs, which
 * become the state. Rows past `position` are stale but never read (attention reads [0, pos+seq)),
 * so `rollback` only moves the position back.
 */
import type { Backend, Executable, HostArray, NodeTime } from '../../backends/backend.js';
import { InternalError, KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { numel } from '../../graph/types.js';
import { POS, type KvCacheMeta } from '../../passes/insert-kv-cache.js';
import { tokensSymbol } from '../../passes/kv-util.js';
import { type PassReport, runPipeline } from '../../passes/manager.js';
import type { Pass } from '../../passes/pass.js';
import { PIPELINE } from '../../passes/pipeline.js';
import { Sampler, type SamplingOptions, checkSamplingOptions } from './sampling.js';
import type { Weights } from './weights.js';

export interface SessionOptions {
  readonly backend: Backend;
  readonly weights: Weights;
  /** Length of the KV cache (default: the model's maxSeqLen). */
  readonly maxSeqLen?: number;
  /**
   * The most tokens one prefill step runs (default DEFAULT_BATCH, as llama.cpp's micro-batch): a
   * longer prompt goes in steps of this many. Attention's scores take [heads, batch, maxSeqLen],
   * so a long context no longer needs memory for maxSeqLen² scores per head.
   */
  readonly batch?: number;
  /** The passes to run (default PIPELINE; must include insert-kv-cache). */
  readonly passes?: readonly Pass[];
  /** Time every kernel (see `profile()`); the backend must support it (js, wasm). */
  readonly profile?: boolean;
}

export interface GenerateOptions extends SamplingOptions {
  readonly maxTokens: number;
  /** Seed of the sampler's generator (default 0); unused when greedy. */
  readonly seed?: number;
  /** Generation ends after yielding one of these. */
  readonly stopTokens?: readonly number[];
  /** Also yield each step's logits (the distribution the token was drawn from, before sampling). */
  readonly logits?: boolean;
}

export interface GenerateStep {
  readonly token: number;
  /** Time to produce this token: the prefill (or the feed of the prompt's changed part) for the first, one decode step after. */
  readonly ms: number;
  readonly phase: 'prefill' | 'decode';
  readonly logits?: Float32Array;
}

/** Prompt tokens per prefill step unless SessionOptions.batch says otherwise. */
export const DEFAULT_BATCH = 512;

/** Where a `state:` output puts its value. */
const STATE_PREFIX = 'state:';

export class Session {
  /** The step graph both programs were compiled from. */
  readonly program: Graph;
  readonly reports: readonly PassReport[];
  readonly maxSeqLen: number;
  /** The most tokens one step runs; prefill cuts a longer run into steps of this many. */
  readonly maxBatch: number;
  readonly vocabSize: number;
  /** Tokens run through the model since creation (prompt tokens recomputed count again). */
  tokensComputed = 0;

  private readonly state: Record<string, HostArray>;
  private readonly seqSymbol: string;
  private hist: number[] = [];
  private last: Float32Array | undefined;
  private readonly runs = { prefill: 0, decode: 0 };
  /** The states, until the first run: the caches are new zeros (RunArgs.freshState). */
  private fresh: string[] | undefined;
  private disposed = false;
  /** A generate() is under way: the cache is its, until it ends. */
  private generating = false;

  private constructor(
    program: Graph,
    reports: readonly PassReport[],
    private readonly prefillExe: Executable,
    private readonly decodeExe: Executable,
  ) {
    this.program = program;
    this.reports = reports;
    const kv = program.meta['kvCache'] as KvCacheMeta | undefined;
    if (!kv) throw new KilnError('K1018', `session: graph ${program.name} has no KV cache after the pipeline (is insert-kv-cache in the passes?)`);
    this.maxSeqLen = kv.maxSeqLen;
    this.maxBatch = kv.maxBatch ?? kv.maxSeqLen;
    this.state = {};
    for (const name of kv.states) {
      const n = program.nodes.find((x) => x.op === 'state' && x.attrs['name'] === name);
      if (!n) throw new InternalError(`session: state '${name}' of meta.kvCache is not in the graph`);
      this.state[name] = n.type.dtype === 'i32' ? new Int32Array(numel(n.type.shape)) : new Float32Array(numel(n.type.shape));
    }
    this.fresh = [...kv.states];
    const logits = program.outputs.find((o) => o.name === 'logits');
    const shape = logits && program.nodes.find((n) => n.id === logits.value)?.type.shape;
    const v = shape?.at(-1);
    if (typeof v !== 'number') throw new KilnError('K1018', `session: graph ${program.name} has no output 'logits' of shape [..., vocab]`);
    this.vocabSize = v;
    this.seqSymbol = seqSymbolOf(program);
  }

  static async create(model: Graph, opts: SessionOptions): Promise<Session> {
    const batch = opts.batch ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1) throw new KilnError('K1016', `session: batch must be a positive integer, got ${batch}`);
    if (opts.maxSeqLen !== undefined && !(Number.isInteger(opts.maxSeqLen) && opts.maxSeqLen >= 1))
      throw new KilnError('K1016', `session: maxSeqLen must be a positive integer, got ${opts.maxSeqLen}`);
    const llamaMax = (model.meta['llama'] as { maxSeqLen?: unknown } | undefined)?.maxSeqLen;
    if (opts.maxSeqLen === undefined && llamaMax === undefined)
      throw new KilnError('K1016', `session: graph ${model.name} states no context length (no LLaMA config): give maxSeqLen to Session.create`);
    // every weight, before anything compiles: a missing one would only show at the first step
    const missing = model.nodes.filter((n) => n.op === 'param' && opts.weights[String(n.attrs['name'])] === undefined).map((n) => `'${String(n.attrs['name'])}'`);
    if (missing.length) throw new KilnError('K1017', `session: no weights for ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
    const { graph, reports } = runPipeline(model, opts.passes ?? PIPELINE, {
      lastLogitsOnly: true,
      maxBatch: batch,
      ...(opts.maxSeqLen !== undefined ? { maxSeqLen: opts.maxSeqLen } : {}),
    });
    const profile = opts.profile ? { profile: true } : {};
    const prefill = await opts.backend.compile(graph, profile);
    // the decode program runs only in turn with the prefill program: it may share its weights
    const decode = await opts.backend.compile(graph, { ...profile, specialize: { [seqSymbolOf(graph)]: 1 }, shareWith: prefill });
    if (opts.profile && (!prefill.profile || !decode.profile)) throw new KilnError('K1018', `session: the ${opts.backend.name} backend cannot profile its kernels`);
    prefill.setWeights(opts.weights);
    // Over the prefill program's memory (wasm), the decode program's weights are bound already.
    if (!decode.sharesWeights) decode.setWeights(opts.weights);
    return new Session(graph, reports, prefill, decode);
  }

  /** Release what the programs hold (the wasm backend's worker threads and memory). The session is unusable after. */
  dispose(): void {
    this.prefillExe.dispose?.();
    this.decodeExe.dispose?.();
    this.disposed = true;
  }

  /** The two compiled programs: the prefill (any seq) and the one-token decode. */
  get executables(): { readonly prefill: Executable; readonly decode: Executable } {
    return { prefill: this.prefillExe, decode: this.decodeExe };
  }

  /** Kernel times of both programs so far (sessions created with `profile`), and how many runs each made. */
  profile(): { prefill: { runs: number; times: readonly NodeTime[] }; decode: { runs: number; times: readonly NodeTime[] } } | undefined {
    if (!this.prefillExe.profile || !this.decodeExe.profile) return undefined;
    return { prefill: { runs: this.runs.prefill, times: this.prefillExe.profile() }, decode: { runs: this.runs.decode, times: this.decodeExe.profile() } };
  }

  /** The next token's position = the number of tokens in the cache. */
  get position(): number {
    return this.hist.length;
  }

  /** The tokens in the cache, in order. */
  get history(): readonly number[] {
    return this.hist;
  }

  /**
   * Run `tokens` after what the cache holds, in steps of at most maxBatch tokens; returns the
   * logits of the last of them. Everything is checked before the first step runs.
   */
  prefill(tokens: readonly number[]): Float32Array {
    if (tokens.length === 0) throw new KilnError('K1017', 'session: prefill needs at least one token');
    this.checkRoom(tokens);
    let logits: Float32Array | undefined;
    for (let i = 0; i < tokens.length; i += this.maxBatch) {
      const part = tokens.slice(i, i + this.maxBatch);
      logits = this.step(part, part.length === 1 ? this.decodeExe : this.prefillExe);
    }
    return logits!;
  }

  /** Run one token; returns its logits. */
  decode(token: number): Float32Array {
    return this.step([token], this.decodeExe);
  }

  /** Forget every token from position `pos` on. */
  rollback(pos: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos > this.position)
      throw new KilnError('K1017', `session: cannot roll back to position ${pos}; the cache holds positions [0, ${this.position})`);
    if (pos < this.position) this.last = undefined;
    this.hist.length = pos;
  }

  /**
   * Make the cache hold exactly `prompt` and return the logits of its last token, computing only
   * from the first token that differs from the history (an edit at the end of a prompt recomputes
   * only from the first changed token).
   */
  feed(prompt: readonly number[]): Float32Array {
    if (prompt.length === 0) throw new KilnError('K1017', 'session: the prompt is empty');
    let same = 0;
    while (same < prompt.length && same < this.hist.length && prompt[same] === this.hist[same]) same++;
    if (same === prompt.length && same === this.hist.length && this.last) return this.last.slice();
    // Nothing new, but the last logits are gone (a shorter prompt): recompute its last token.
    const from = Math.min(same, prompt.length - 1);
    this.rollback(from);
    return this.prefill(prompt.slice(from));
  }

  /** Sample up to `maxTokens` tokens after `prompt`, one at a time. One generation at a time per session. */
  async *generate(prompt: readonly number[], opts: GenerateOptions): AsyncGenerator<GenerateStep, void, void> {
    // two generations interleaved on one cache would each read the other's tokens
    if (this.generating) throw new KilnError('K1017', 'session: a generate() is already running on this session; finish it (or break out of its loop) first, or make another session');
    this.generating = true;
    try {
      yield* this.generateSteps(prompt, opts);
    } finally {
      this.generating = false;
    }
  }

  private async *generateSteps(prompt: readonly number[], opts: GenerateOptions): AsyncGenerator<GenerateStep, void, void> {
    checkSamplingOptions(opts);
    if (!Number.isInteger(opts.maxTokens) || opts.maxTokens < 0) throw new KilnError('K1016', `max tokens must be an integer ≥ 0, got ${opts.maxTokens}`);
    // The last sampled token is never run, so n tokens need prompt + n − 1 positions.
    const need = prompt.length + opts.maxTokens - 1;
    if (opts.maxTokens > 0 && need > this.maxSeqLen)
      throw new KilnError('K1020', `a prompt of ${prompt.length} tokens and ${opts.maxTokens} new ones need ${need} positions; the context holds ${this.maxSeqLen}`);
    this.checkTokens(prompt);
    // Nothing to sample: the prompt is not run either (no logits are asked for).
    if (opts.maxTokens === 0) return;
    const sampler = new Sampler(opts, opts.seed ?? 0);
    const stop = new Set(opts.stopTokens ?? []);
    let t0 = performance.now();
    let logits = this.feed(prompt);
    for (let i = 0; i < opts.maxTokens; i++) {
      checkLogits(logits, this.position - 1);
      const token = sampler.sample(logits, this.hist);
      const ms = performance.now() - t0;
      yield { token, ms, phase: i === 0 ? 'prefill' : 'decode', ...(opts.logits ? { logits } : {}) };
      if (stop.has(token) || i + 1 === opts.maxTokens) return;
      t0 = performance.now();
      logits = this.decode(token);
    }
  }

  private checkTokens(tokens: readonly number[]): void {
    tokens.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize)
        throw new KilnError('K1017', `token ${typeof t === 'number' ? t : `${JSON.stringify(t)} (a ${typeof t}, not a number)`} (at ${i}) is outside the vocabulary [0, ${this.vocabSize})`);
    });
  }

  /** The tokens are in the vocabulary and fit in the context after what it holds. */
  private checkRoom(tokens: readonly number[]): void {
    this.checkTokens(tokens);
    const pos = this.position;
    if (pos + tokens.length > this.maxSeqLen)
      throw new KilnError('K1020', `the context is full: ${pos} tokens held + ${tokens.length} new > maxSeqLen ${this.maxSeqLen} (roll back, or make the session with a larger maxSeqLen)`);
  }

  private step(tokens: readonly number[], exe: Executable): Float32Array {
    if (this.disposed) throw new KilnError('K1017', 'session: disposed');
    this.checkRoom(tokens);
    const pos = this.position;
    const out = exe.run({ inputs: { tokens: Int32Array.from(tokens) }, symbols: { [this.seqSymbol]: tokens.length, [POS]: pos }, state: this.state, ...(this.fresh ? { freshState: this.fresh } : {}) });
    this.fresh = undefined;
    this.runs[exe === this.decodeExe ? 'decode' : 'prefill']++;
    for (const [name, value] of Object.entries(out)) if (name.startsWith(STATE_PREFIX)) this.state[name.slice(STATE_PREFIX.length)] = value;
    const all = out['logits'];
    if (!(all instanceof Float32Array)) throw new InternalError(`session: the ${exe.backend} program returned no f32 'logits'`);
    this.hist.push(...tokens);
    this.tokensComputed += tokens.length;
    this.last = all.slice(all.length - this.vocabSize);
    return this.last.slice();
  }
}

function seqSymbolOf(g: Graph): string {
  const s = tokensSymbol(g);
  if (s === undefined) throw new KilnError('K1018', `session: graph ${g.name} has no input 'tokens' i32[seq]`);
  return s;
}

/** Sampling from NaN is choosing token 0 in silence: say what went wrong instead. */
function checkLogits(logits: Float32Array, pos: number): void {
  let nan = 0;
  let inf = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v !== v) nan++;
    else if (v === Infinity || v === -Infinity) inf++;
  }
  if (nan || inf)
    throw new KilnError(
      'K1017',
      `the logits at position ${pos} hold ${[nan ? `${nan} NaN` : '', inf ? `${inf} infinite` : ''].filter(Boolean).join(' and ')} of ${logits.length} values: the weights or the activations they produce are not finite in f32`,
    );
}
