import { KilnError } from '../../graph/errors.js';
import { byOp, formatProfile } from '../../backends/profile.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { commas, humanBytes, plural } from './format.js';
import { writeStdout } from './io.js';
import { isCheckpointPath, loadModel } from './load.js';
import { checkTokens, parseTokens } from './tokens.js';

export interface RunOptions {
  readonly tokens?: string;
  readonly prompt?: string;
  readonly tokenizer?: string;
  readonly maxTokens: number;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly repeatPenalty?: number;
  readonly repeatLastN?: number;
  readonly seed?: number;
  readonly weightsSeed?: number;
  readonly context?: number;
  /** Prompt tokens per prefill step (default: the session's, 512). */
  readonly batch?: number;
  readonly backend: string;
  readonly json?: boolean;
  /** Keep generating past the end-of-sequence token. */
  readonly ignoreEos?: boolean;
  readonly typecheck?: boolean;
  /** Time every kernel and print where the time went (stderr; in the JSON with --json). */
  readonly profile?: boolean;
}

/**
 * `kiln run`: generate after a prompt. A checkpoint brings its weights and tokenizer; anything
 * else runs with seeded random weights. With `--prompt` the prompt is text (BOS as the tokenizer
 * says, as llama.cpp and llama2.c add it) and the continuation streams as text; with `--tokens`
 * the prompt is ids and ids stream. Generation stops after the tokenizer's EOS. `--json` prints
 * one object at the end instead.
 */
export async function run(spec: string, opts: RunOptions): Promise<void> {
  if (opts.prompt === undefined && opts.tokens === undefined) throw new KilnError('K1016', 'give a prompt: as text (--prompt "...") or as token ids (--tokens 1,2,3)');
  if (opts.prompt !== undefined && opts.tokens !== undefined) throw new KilnError('K1016', 'give the prompt as text (--prompt) or as token ids (--tokens), not both');
  const { checkSamplingOptions, checkSeed } = await import('../runtime/sampling.js');
  const sampling = {
    temperature: opts.temperature ?? 0,
    ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
    ...(opts.repeatPenalty !== undefined ? { repetitionPenalty: opts.repeatPenalty } : {}),
    ...(opts.repeatLastN !== undefined ? { repeatLastN: opts.repeatLastN } : {}),
  };
  // before the model loads: a checkpoint can take seconds
  checkSamplingOptions(sampling, { temperature: '--temperature', topK: '--top-k', topP: '--top-p', repetitionPenalty: '--repeat-penalty', repeatLastN: '--repeat-last-n' });
  checkSeed(opts.seed ?? 0, '--seed');
  if (opts.profile && !['js', 'wasm'].includes(opts.backend)) throw new KilnError('K1016', `--profile times the js and wasm backends' kernels; the ${opts.backend} backend has no kernel timer`);
  const isCheckpoint = isCheckpointPath(spec);
  if (isCheckpoint && opts.weightsSeed !== undefined) process.stderr.write(`kiln: --weights-seed applies to models without a checkpoint; ${spec} brings its own weights, so it is ignored\n`);
  if (opts.tokenizer !== undefined && !isCheckpoint) throw new KilnError('K1016', `--tokenizer applies to checkpoints (.gguf, .safetensors, llama2.c .bin); ${spec} is not one`);
  const { graph: g, checkpoint, tokenizer: data } = await loadModel(spec, {
    typecheck: opts.typecheck !== false,
    ...(opts.tokenizer !== undefined ? { tokenizer: opts.tokenizer } : {}),
  });
  const tokenizer = data ? await makeTokenizer(data) : undefined;
  if (opts.prompt !== undefined && !tokenizer)
    throw new KilnError(
      'K1016',
      isCheckpoint
        ? `--prompt needs a tokenizer and ${spec} has none: give --tokenizer FILE (tokenizer.json or llama2.c tokenizer.bin), or the prompt as ids with --tokens`
        : `--prompt needs a tokenizer and ${spec} is not a checkpoint: give the prompt as ids with --tokens` +
            (spec.startsWith('preset:') ? `, or write the preset with a tokenizer first: kiln convert ${spec} model.gguf` : ''),
    );
  const prompt = opts.prompt !== undefined ? tokenizer!.encode(opts.prompt) : parseTokens(opts.tokens!);
  if (prompt.length === 0) throw new KilnError('K1016', '--prompt: the prompt encodes to no tokens (and the tokenizer adds no BOS)');
  checkTokens(prompt, g);
  const { Session } = await import('../runtime/session.js');
  const { randomWeights } = await import('../runtime/weights.js');
  const { loadBackend } = await import('./backends.js');
  const { modelMaxSeqLen } = await import('./compile.js');

  // The last sampled token is never run: prompt + n − 1 positions (the prompt alone for n = 0).
  const need = prompt.length + Math.max(0, opts.maxTokens - 1);
  const own = modelMaxSeqLen(g);
  let context = opts.context ?? own ?? need;
  let raised = false;
  if (opts.context === undefined && need > context) {
    process.stderr.write(`kiln: the prompt and --max-tokens need ${need} positions, past the model's maxSeqLen ${context}: running with a context of ${need}\n`);
    context = need;
    raised = true;
  }
  if (need > context) throw new KilnError('K1016', `the prompt (${prompt.length} tokens) and --max-tokens ${opts.maxTokens} need ${need} positions; --context is ${context}`);

  const backend = await loadBackend(opts.backend);
  const { checkpointWeights } = await import('../formats/checkpoint.js');
  const weights = checkpoint ? checkpointWeights(checkpoint) : randomWeights(g, opts.weightsSeed ?? 0);
  const session = await Session.create(g, { backend, weights, maxSeqLen: context, profile: opts.profile === true, ...(opts.batch !== undefined ? { batch: opts.batch } : {}) }).catch(async (e: unknown) => {
    if (!(e instanceof RangeError)) throw e;
    // an ArrayBuffer or wasm memory too large to allocate: almost always the context
    const { kvCacheBytesPerToken, llamaMeta } = await import('../analysis/llama.js');
    const meta = llamaMeta(g);
    const kv = meta ? `, ${humanBytes(kvCacheBytesPerToken(meta) * context)} of it KV cache` : '';
    const why = raised ? ` (raised past the model's maxSeqLen ${own} to fit the prompt and --max-tokens ${opts.maxTokens})` : '';
    throw new KilnError('K1020', `cannot allocate the memory for a context of ${commas(context)} positions${why}${kv} (${e.message}): give a smaller ${raised ? '--max-tokens or --context' : '--context'}`);
  });
  const device = session.executables.prefill.device;
  const deviceNote = session.executables.prefill.deviceNote;
  if (deviceNote !== undefined) process.stderr.write(`kiln: ${deviceNote}\n`);
  if (device !== undefined) process.stderr.write(`kiln: ${backend.name} backend running on ${device}\n`);
  if (sampling.temperature === 0 && (opts.topK !== undefined || opts.topP !== undefined))
    process.stderr.write('kiln: --top-k and --top-p shape sampling; with --temperature 0 (the default) decoding is greedy and ignores them\n');
  const stopTokens = tokenizer && !opts.ignoreEos ? [tokenizer.eos] : [];
  const text = opts.prompt !== undefined && !opts.json;
  // The continuation follows the prompt, so a leading space in its first token is real text.
  const decoder = tokenizer?.streamDecoder();
  if (text) await writeStdout(opts.prompt!);
  const tokens: number[] = [];
  let generated = '';
  let prefillMs = 0;
  let decodeMs = 0;
  for await (const step of session.generate(prompt, { maxTokens: opts.maxTokens, seed: opts.seed ?? 0, stopTokens, ...sampling })) {
    tokens.push(step.token);
    if (step.phase === 'prefill') prefillMs = step.ms;
    else decodeMs += step.ms;
    const piece = decoder ? decoder.push(step.token) : '';
    generated += piece;
    if (text) await writeStdout(piece);
    else if (!opts.json) await writeStdout(`${tokens.length > 1 ? ' ' : ''}${step.token}`);
  }
  const rest = decoder ? decoder.flush() : '';
  generated += rest;
  const decoded = Math.max(0, tokens.length - 1);
  const timings = {
    prefillMs: round(prefillMs),
    decodeMsPerToken: decoded ? round(decodeMs / decoded) : 0,
    tokensPerSecond: decodeMs > 0 ? round((decoded * 1000) / decodeMs) : 0,
  };
  const stopped = stopTokens.includes(tokens.at(-1) ?? -1) ? 'eos' : 'max-tokens';
  const profile = session.profile();
  if (opts.json) {
    const byPhase = profile && { prefill: { runs: profile.prefill.runs, ops: byOp(profile.prefill.times) }, decode: { runs: profile.decode.runs, ops: byOp(profile.decode.times) } };
    await writeStdout(`${JSON.stringify({ tokens, prompt, ...(tokenizer ? { text: generated } : {}), stopped, timings, ...(byPhase ? { profile: byPhase } : {}) })}\n`);
    return;
  }
  await writeStdout(`${text ? rest : ''}\n`);
  process.stderr.write(
    `kiln: ${plural(tokens.length, 'token')} on ${backend.name}${stopped === 'eos' ? ' (stopped at EOS)' : ''}; prefill ${timings.prefillMs} ms (${plural(prompt.length, 'token')}), decode ${timings.decodeMsPerToken} ms/token (${timings.tokensPerSecond} tokens/s)\n`,
  );
  if (profile)
    for (const phase of ['prefill', 'decode'] as const)
      if (profile[phase].runs) process.stderr.write(`\nkiln: ${phase} kernels, per run (${profile[phase].runs} run${profile[phase].runs > 1 ? 's' : ''}):\n${formatProfile(profile[phase].times, profile[phase].runs)}\n`);
}

async function makeTokenizer(data: TokenizerData) {
  const { Tokenizer } = await import('../tokenizer/index.js');
  return Tokenizer.fromData(data);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
