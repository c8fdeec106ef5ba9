import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkpoint } from '../formats/checkpoint.js';
import { commas, humanBytes, table } from './format.js';

/** What `kiln info` and `kiln convert` tell about a checkpoint file, beyond the model's config. */
export interface CheckpointFacts {
  readonly path: string;
  readonly format: Checkpoint['format'];
  /** On disk: the file, or for a folder the files in it. */
  readonly fileBytes: number;
  readonly tensors: number;
  /** Tensors and stored bytes per dtype, most bytes first. */
  readonly dtypes: Readonly<Record<string, { count: number; bytes: number }>>;
  readonly tokenizer: { tokens: number; bos: number; eos: number } | null;
}

/** Bytes on disk at `path`: a file's size, or a folder's files' sizes summed (not recursing). */
export function diskBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let sum = 0;
  for (const f of readdirSync(path)) {
    const s = statSync(join(path, f));
    if (s.isFile()) sum += s.size;
  }
  return sum;
}

/** Tensors and bytes per dtype, most bytes first. */
export function dtypeMix(tensors: Iterable<{ readonly dtype: string; readonly bytes: number }>): CheckpointFacts['dtypes'] {
  const mix = new Map<string, { count: number; bytes: number }>();
  for (const t of tensors) {
    const e = mix.get(t.dtype) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += t.bytes;
    mix.set(t.dtype, e);
  }
  return Object.fromEntries([...mix].sort((a, b) => b[1].bytes - a[1].bytes || a[0].localeCompare(b[0])));
}

export function checkpointFacts(path: string, ck: Checkpoint): CheckpointFacts {
  const tok = ck.tokenizer;
  return {
    path,
    format: ck.format,
    fileBytes: diskBytes(path),
    tensors: ck.tensors.size,
    dtypes: dtypeMix([...ck.tensors.values()].map((t) => ({ dtype: t.dtype, bytes: t.bytes.length }))),
    tokenizer: tok ? { tokens: tok.tokens.length, bos: tok.bos, eos: tok.eos } : null,
  };
}

/** `f32: 57 tensors, 1,234 bytes (1.18 KiB); q8_0: …` */
export function formatDtypeMix(dtypes: CheckpointFacts['dtypes']): string {
  return Object.entries(dtypes)
    .map(([d, e]) => `${d}: ${e.count} tensor${e.count === 1 ? '' : 's'}, ${commas(e.bytes)} bytes (${humanBytes(e.bytes)})`)
    .join('; ');
}

export function formatCheckpointFacts(f: CheckpointFacts): string {
  return [
    `checkpoint ${f.path} (${f.format})`,
    table([
      ['file size', `${commas(f.fileBytes)} bytes (${humanBytes(f.fileBytes)})`],
      ['tensors', commas(f.tensors)],
      ...Object.entries(f.dtypes).map(([d, e]) => [`  ${d}`, `${e.count} tensor${e.count === 1 ? '' : 's'}, ${commas(e.bytes)} bytes (${humanBytes(e.bytes)})`] as const),
      ['tokenizer', f.tokenizer ? `${commas(f.tokenizer.tokens)} tokens (BOS ${f.tokenizer.bos}, EOS ${f.tokenizer.eos})` : 'none in the file'],
    ]),
  ].join('\n');
}
