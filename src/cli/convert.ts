import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import type { Checkpoint, CheckpointTensor } from '../formats/checkpoint.js';
import { commas, humanBytes } from './format.js';
import { writeStdout } from './io.js';
import type { VocabKind } from './vocab.js';

export interface ConvertOptions {
  /** A tokenizer file for the input (llama2.c's tokenizer.bin, HF's tokenizer.json). */
  readonly tokenizer?: string;
  /** preset: inputs only — seed of the random weights. */
  readonly seed?: number;
  /** preset: inputs only — which vocabulary to write. */
  readonly vocab?: VocabKind;
}

type Target = 'gguf' | 'safetensors';

/** GGUF for `.gguf`; safetensors for `.safetensors` or a path without an extension (a folder). */
function targetOf(out: string): Target {
  const lower = out.toLowerCase();
  if (lower.endsWith('.gguf')) return 'gguf';
  if (lower.endsWith('.safetensors') || !/\.[a-z0-9]+$/.test(lower.split(/[\\/]/).pop() ?? '')) return 'safetensors';
  throw new KilnError('K1016', `convert: cannot tell the output format of '${out}' (use .gguf, .safetensors, or a folder for safetensors)`);
}

/**
 * `kiln convert IN OUT`: a checkpoint to GGUF or safetensors (tensors copied as stored, q/k rows
 * permuted between RoPE layouts where the formats differ), or `preset:NAME` to a file with seeded
 * random weights (std 0.1, the runtime's `randomWeights`) and a tokenizer, so there is a model to
 * run without downloading one. Files are written atomically. Prints what it wrote.
 */
export async function convertCommand(input: string, out: string, opts: ConvertOptions): Promise<void> {
  const to = targetOf(out);
  const preset = input.startsWith('preset:');
  if (!preset && (opts.seed !== undefined || opts.vocab !== undefined))
    throw new KilnError('K1016', '--seed and --vocab apply to preset:NAME inputs only (a checkpoint brings its own weights and vocabulary)');
  if (preset && opts.tokenizer !== undefined) throw new KilnError('K1016', '--tokenizer applies to checkpoint inputs; for preset:NAME choose --vocab llama or synthetic');

  let ck: Checkpoint;
  let vocabNote = '';
  if (preset) {
    ck = await presetCheckpoint(input.slice('preset:'.length), opts);
    vocabNote = ck.tokenizer!.tokens.length === 32000 && opts.vocab !== 'synthetic' ? 'the LLaMA vocabulary' : 'a synthetic vocabulary';
  } else {
    const { isCheckpointPath, loadModel } = await import('./load.js');
    if (!isCheckpointPath(input))
      throw new KilnError('K1016', `convert: '${input}' is not a checkpoint (.gguf, .safetensors, a Hugging Face folder, a llama2.c .bin) or preset:NAME`);
    // loadModel checks the config builds a graph, so what we write is a model kiln can run.
    const m = await loadModel(input, opts.tokenizer !== undefined ? { tokenizer: opts.tokenizer } : {});
    ck = m.tokenizer ? { ...m.checkpoint!, tokenizer: m.tokenizer } : m.checkpoint!;
  }

  const { writeCheckpointGguf, writeCheckpointSafetensors } = await import('../formats/convert.js');
  if (!existsSync(dirname(resolve(out)))) throw new KilnError('K1016', `convert: cannot write '${out}': the folder '${dirname(out)}' does not exist`);
  let files = [out];
  try {
    if (to === 'gguf') writeCheckpointGguf(ck, out);
    else files = writeCheckpointSafetensors(ck, out);
  } catch (e) {
    // A full disk or a read-only folder is the user's to fix, not a bug.
    const code = (e as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new KilnError('K1016', `convert: cannot write '${out}': ${code} (${(e as Error).message.split('\n')[0]})`);
    throw e;
  }

  const { diskBytes, dtypeMix, formatDtypeMix } = await import('./checkpoint-facts.js');
  const { normalizeLlamaConfig } = await import('../dsl/llama.js');
  const layout = normalizeLlamaConfig(ck.config, undefined).ropeLayout;
  const bytes = diskBytes(out);
  const from = preset ? `${input} (random weights, seed ${opts.seed ?? 0}, std 0.1)` : `${input} (${ck.format})`;
  const lines = [
    `kiln: wrote ${out} (${to}) from ${from}: ${ck.tensors.size} tensors, ${commas(bytes)} bytes (${humanBytes(bytes)})`,
    `  dtypes: ${formatDtypeMix(dtypeMix(writtenTensors(ck, to)))}`,
  ];
  // GGUF holds q/k rows for interleaved RoPE pairs, safetensors (Hugging Face) for rotate-half.
  const want = to === 'gguf' ? 'interleaved' : 'half';
  if (layout !== want)
    lines.push(`  RoPE: q and k rows permuted per head, ${layout === 'half' ? 'rotate-half (Hugging Face) → interleaved pairs (GGUF)' : 'interleaved pairs (GGUF/Meta) → rotate-half (Hugging Face)'}`);
  if (to === 'safetensors') lines.push(`  files: ${files.join(', ')}`);
  if (to === 'gguf') lines.push(ck.tokenizer ? `  tokenizer: ${ck.tokenizer.tokens.length} tokens${vocabNote ? `, ${vocabNote}` : ''}` : '  tokenizer: none (the input had none; give --tokenizer FILE)');
  else if (ck.tokenizer) lines.push(`  tokenizer: ${ck.tokenizer.tokens.length} tokens, as tokenizer.json${vocabNote ? ` (${vocabNote})` : ''}`);
  await writeStdout(`${lines.join('\n')}\n`);
}

/** The dtype mix as written: safetensors has no q8_0, so those tensors go as f32 (see formats/convert.ts). */
function writtenTensors(ck: Checkpoint, to: Target): { dtype: string; bytes: number }[] {
  return [...ck.tensors.values()].map((t) =>
    to === 'safetensors' && t.dtype === 'q8_0' ? { dtype: 'f32', bytes: 4 * t.shape.reduce((a, b) => a * b, 1) } : { dtype: t.dtype, bytes: t.bytes.length },
  );
}

/** A preset as a checkpoint: seeded random f32 weights in graph order, and a vocabulary. */
async function presetCheckpoint(name: string, opts: ConvertOptions): Promise<Checkpoint> {
  const { PRESETS } = await import('../dsl/presets.js');
  const config = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!config) throw new KilnError('K1012', `unknown preset '${name}'; known presets: ${Object.keys(PRESETS).join(', ')}`);
  const { llama } = await import('../dsl/llama.js');
  const { randomWeights } = await import('../runtime/weights.js');
  const { makeTensor } = await import('../formats/consistency.js');
  const { encode } = await import('../formats/dtypes.js');
  const { presetVocab } = await import('./vocab.js');
  const tokenizer = await presetVocab(config.vocabSize, opts.vocab);
  const g = llama(config).build();
  const weights = randomWeights(g, opts.seed ?? 0, 0.1);
  const tensors = new Map<string, CheckpointTensor>();
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const pname = String(n.attrs['name']);
    if (!tensors.has(pname)) tensors.set(pname, makeTensor(pname, 'f32', n.type.shape as number[], encode('f32', weights[pname]!)));
  }
  return { file: `preset:${name}`, format: 'gguf', config, tensors, tokenizer, metadata: {} };
}
