import { KilnError } from '../../graph/errors.js';
import { writeStdout } from './io.js';
import { loadGraph } from './load.js';
import { checkTokens, parseTokens } from './tokens.js';

export interface RunOptions {
  readonly tokens: string;
  readonly maxTokens: number;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly repeatPenalty?: number;
  readonly seed?: number;
  readonly weightsSeed?: number;
  readonly context?: number;
  readonly backend: string;
  readonly json?: boolean;
  readonly typecheck?: boolean;
}

/**
 * `kiln run`: generate tokens after a prompt of token ids, with seeded random weights until
 * checkpoints load. Ids stream to stdout as they come; `--json` prints one object at the end.
 */
export async function run(spec: string, opts: RunOptions): Promise<void> {
  const prompt = parseTokens(opts.tokens);
  const g = await loadGraph(spec, { typecheck: opts.typecheck !== false });
  checkTokens(prompt, g);
  const { Session } = await import('../runtime/session.js');
  const { randomWeights } = await import('../runtime/weights.js');
  const { checkSamplingOptions } = await import('../runtime/sampling.js');
  const { loadBackend } = await import('./backends.js');
  const { modelMaxSeqLen } = await import('./compile.js');
  const sampling = {
    temperature: opts.temperature ?? 0,
    ...(opts.topK !== undefined ? { topK: opts.topK } : {}),
    ...(opts.topP !== undefined ? { topP: opts.topP } : {}),
    ...(opts.repeatPenalty !== undefined ? { repetitionPenalty: opts.repeatPenalty } : {}),
  };
  checkSamplingOptions(sampling);

  // The last sampled token is never run: prompt + n − 1 positions.
  const need = prompt.length + opts.maxTokens - 1;
  const own = modelMaxSeqLen(g);
  let context = opts.context ?? own ?? need;
  if (opts.context === undefined && need > context) {
    process.stderr.write(`kiln: the prompt and --max-tokens need ${need} positions, past the model's maxSeqLen ${context}: running with a context of ${need}\n`);
    context = need;
  }
  if (need > context) throw new KilnError('K1020', `the prompt (${prompt.length} tokens) and --max-tokens ${opts.maxTokens} need ${need} positions; --context is ${context}`);

  const backend = await loadBackend(opts.backend);
  const session = await Session.create(g, { backend, weights: randomWeights(g, opts.weightsSeed ?? 0), maxSeqLen: context });
  const tokens: number[] = [];
  let prefillMs = 0;
  let decodeMs = 0;
  for await (const step of session.generate(prompt, { maxTokens: opts.maxTokens, seed: opts.seed ?? 0, ...sampling })) {
    tokens.push(step.token);
    if (step.phase === 'prefill') prefillMs = step.ms;
    else decodeMs += step.ms;
    if (!opts.json) await writeStdout(`${tokens.length > 1 ? ' ' : ''}${step.token}`);
  }
  const decoded = Math.max(0, tokens.length - 1);
  const timings = {
    prefillMs: round(prefillMs),
    decodeMsPerToken: decoded ? round(decodeMs / decoded) : 0,
    tokensPerSecond: decodeMs > 0 ? round((decoded * 1000) / decodeMs) : 0,
  };
  if (opts.json) {
    await writeStdout(`${JSON.stringify({ tokens, prompt, timings })}\n`);
    return;
  }
  await writeStdout('\n');
  process.stderr.write(
    `kiln: ${tokens.length} tokens on ${backend.name}; prefill ${timings.prefillMs} ms (${prompt.length} tokens), decode ${timings.decodeMsPerToken} ms/token (${timings.tokensPerSecond} tokens/s)\n`,
  );
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
