/**
 * Tokenizers kept beside a checkpoint (llama2.c's tokenizer.bin, HF's tokenizer.json) are read by
 * the tokenizer module's loaders. It is imported lazily, by a computed specifier, so formats does
 * not depend on it at build time and loads checkpoints without it.
 */
import { existsSync } from 'node:fs';
import type { TokenizerData } from './checkpoint.js';
import { malformed } from './file.js';

const MODULES = ['../tokenizer/index.js', '../tokenizer/load.js', '../tokenizer/loaders.js', '../tokenizer/tokenizer.js'];

async function findLoader(fn: string): Promise<((...a: unknown[]) => unknown) | undefined> {
  for (const m of MODULES) {
    try {
      const mod = (await import(m)) as Record<string, unknown>;
      if (typeof mod[fn] === 'function') return mod[fn] as (...a: unknown[]) => unknown;
    } catch {
      /* not there (yet) */
    }
  }
  return undefined;
}

/** TokenizerData from what a loader returns: the data itself, or a Tokenizer holding it as `.data`. */
function asData(x: unknown): TokenizerData | undefined {
  const o = x as { tokens?: unknown; data?: unknown } | undefined;
  if (o && Array.isArray(o.tokens)) return o as TokenizerData;
  if (o && typeof o.data === 'object' && o.data !== null && Array.isArray((o.data as { tokens?: unknown }).tokens)) return o.data as TokenizerData;
  return undefined;
}

/**
 * Load `path` with the tokenizer module's `fn`, if the file exists. A file the caller named
 * explicitly (`required`) must load; one only found beside the checkpoint is skipped when the
 * tokenizer module cannot read it.
 */
export async function loadSideTokenizer(fn: string, path: string, args: unknown[], required: boolean): Promise<TokenizerData | undefined> {
  if (!existsSync(path)) {
    if (required) throw malformed(path, 'tokenizer file not found');
    return undefined;
  }
  const load = await findLoader(fn);
  if (!load) {
    if (required) throw malformed(path, `cannot read this tokenizer: the tokenizer module has no ${fn}`);
    return undefined;
  }
  const data = asData(await load(path, ...args));
  if (!data && required) throw malformed(path, `${fn} returned no tokenizer data`);
  return data;
}
