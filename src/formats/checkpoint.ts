/**
 * The checkpoint contract shared by every reader (GGUF, safetensors, llama2.c) and by the
 * runtime: tensors under kiln's (GGUF's) names, row-major, with the model config taken from the
 * file's own metadata. `loadCheckpoint` picks the reader by magic, then by extension.
 */
import { readSync, openSync, closeSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import type { LlamaConfig } from '../dsl/llama.js';
import { malformed } from './file.js';
import { readGguf } from './gguf-read.js';
import { isPytorch, PYTORCH_HINT, readLlama2c } from './llama2c.js';
import { readSafetensors } from './safetensors-read.js';

export type TensorDType = 'f32' | 'f16' | 'bf16' | 'q8_0';

export interface CheckpointTensor {
  /** kiln/GGUF name, e.g. 'blk.0.attn_q.weight'. */
  readonly name: string;
  /** As stored in the file. */
  readonly dtype: TensorDType;
  /** Row-major, outermost first ([out, in] for matrices). */
  readonly shape: readonly number[];
  /** The stored bytes, little-endian; quantised blocks kept as they are. */
  readonly bytes: Uint8Array;
  /** A dequantised copy. */
  toFloat32(): Float32Array;
}

export interface TokenizerData {
  /** SentencePiece BPE with byte fallback. */
  readonly model: 'llama';
  readonly tokens: readonly string[];
  readonly scores: readonly number[];
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte (GGUF's token_type). */
  readonly types: readonly number[];
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addSpacePrefix: boolean;
}

export type CheckpointFormat = 'gguf' | 'safetensors' | 'llama2c';

export interface Checkpoint {
  readonly file: string;
  readonly format: CheckpointFormat;
  /** From the file's own metadata. */
  readonly config: LlamaConfig;
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  readonly tokenizer?: TokenizerData;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface LoadOptions {
  /** A tokenizer file for formats that keep it apart: llama2.c's tokenizer.bin, HF's tokenizer.json. */
  tokenizer?: string;
}

/** Which reader a path needs: GGUF magic first, then a directory or extension, then a JSON header. */
export function detectFormat(path: string): CheckpointFormat {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw malformed(path, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  if (st.isDirectory()) {
    if (['.gguf', '.bin'].includes(extname(path).toLowerCase())) throw malformed(path, `is a folder, not a ${extname(path).toLowerCase() === '.gguf' ? 'GGUF' : 'llama2.c'} file`);
    return 'safetensors';
  }
  if (st.size === 0) throw malformed(path, 'the file is empty');
  const head = new Uint8Array(9);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 9, 0);
  } finally {
    closeSync(fd);
  }
  if (String.fromCharCode(...head.subarray(0, 4)) === 'GGUF') return 'gguf';
  const ext = extname(path).toLowerCase();
  if (ext === '.gguf') return 'gguf';
  if (ext === '.safetensors' || ext === '.json') return 'safetensors';
  if (ext === '.bin') return 'llama2c';
  if (st.size >= 9 && head[8] === 0x7b) return 'safetensors'; // '{' after the u64 header length
  if (isPytorch(head)) throw malformed(path, PYTORCH_HINT); // a .pt or .pth
  throw malformed(path, 'unrecognised checkpoint format (expected GGUF, safetensors or a llama2.c .bin)');
}

export async function loadCheckpoint(path: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  switch (detectFormat(path)) {
    case 'gguf':
      return readGguf(path);
    case 'safetensors':
      return readSafetensors(path, opts);
    case 'llama2c':
      return readLlama2c(path, opts);
  }
}

/** Every tensor dequantised to f32, by kiln name: the weights Session and interpret take. */
export function checkpointWeights(c: Checkpoint): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of c.tensors) out[name] = t.toFloat32();
  return out;
}
