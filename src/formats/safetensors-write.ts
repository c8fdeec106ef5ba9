/**
 * safetensors writer: Hugging Face names, a config.json beside the weights, files written
 * atomically. HF stores q/k rows for the rotate-half RoPE layout, so tensors given for an
 * interleaved config (GGUF's, llama2.c's — the default) are permuted per head on the way out;
 * tensors for a `ropeLayout: 'half'` config are written as they are.
 */
import type { TokenizerData } from './checkpoint.js';
import { hfTokenizerJson } from '../tokenizer/hf-json-write.js';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { KilnError } from '../../graph/errors.js';
import type { LlamaConfig } from '../dsl/llama.js';
import type { TensorDType } from './checkpoint.js';
import { checkConfig } from './consistency.js';
import { byteLength, encode } from './dtypes.js';
import { type FileWriter, writeFilesAtomic } from './file.js';
import { kilnToHf, permuteRopeRows, ropeHeads } from './hf-names.js';

export interface SafetensorsTensorIn {
  /** kiln/GGUF name. */
  readonly name: string;
  readonly dtype: Exclude<TensorDType, 'q8_0'>;
  readonly shape: readonly number[];
  readonly data?: Float32Array;
  readonly bytes?: Uint8Array;
}

export interface SafetensorsWriteOptions {
  /** Split into shards of about this many bytes, with a model.safetensors.index.json. */
  readonly shardBytes?: number;
  /** Written beside them as tokenizer.json (Hugging Face keeps the tokenizer apart). */
  readonly tokenizer?: TokenizerData;
}

const ST_DTYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

/** config.json for `config` in Hugging Face's LlamaConfig terms. */
export function hfConfigJson(config: LlamaConfig): Record<string, unknown> {
  const c = checkConfig('writeSafetensors', config);
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    _name_or_path: c.name,
    hidden_act: 'silu',
    hidden_size: c.dim,
    intermediate_size: c.hiddenDim,
    num_attention_heads: c.nHeads,
    num_hidden_layers: c.nLayers,
    num_key_value_heads: c.nKvHeads,
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.normEps,
    rope_theta: c.ropeBase,
    vocab_size: c.vocabSize,
    tie_word_embeddings: c.tiedEmbeddings,
  };
}

type Entry = { hf: string; dtype: keyof typeof ST_DTYPE; shape: readonly number[]; bytes: Uint8Array };

/** One safetensors file of `entries`, as a path and its writer. */
function oneFile(path: string, entries: readonly Entry[]): { path: string; write: FileWriter } {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const e of entries) {
    header[e.hf] = { dtype: ST_DTYPE[e.dtype], shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned, as HF's writer does
  const h = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(h.length), true);
  return {
    path,
    write: (put) => {
      put(len);
      put(h);
      for (const e of entries) put(e.bytes);
    },
  };
}

const textFile = (path: string, text: string) => ({ path, write: (put: (c: Uint8Array) => void) => put(new TextEncoder().encode(text)) });

/**
 * Refuse to write into `dir` what would spoil or be spoilt by what is there: a config.json of
 * another model (which we would replace, breaking that model), or a shard index we would not
 * replace (which readers of the folder load instead of our weights).
 */
function checkFolder(dir: string, cfgText: string, index: string | undefined): void {
  const d = statSync(dir, { throwIfNoEntry: false });
  if (d === undefined) return; // a new folder: nothing in the way
  if (!d.isDirectory()) throw new KilnError('K1016', `cannot write into '${dir}': it is a file, not a folder`);
  const cfgPath = join(dir, 'config.json');
  const st = statSync(cfgPath, { throwIfNoEntry: false });
  if (st && !st.isFile()) throw new KilnError('K1016', `cannot write '${cfgPath}': it is a folder`);
  if (st) {
    let same = false;
    try {
      same = isDeepStrictEqual(JSON.parse(readFileSync(cfgPath, 'utf8')), JSON.parse(cfgText));
    } catch {
      /* unreadable or not JSON: not the same */
    }
    if (!same)
      throw new KilnError('K1016', `'${cfgPath}' describes a different model and would be replaced, breaking it; write this model to another folder than '${dir}'`);
  }
  const stale = readdirSync(dir).find((f) => f.endsWith('.safetensors.index.json') && f !== index);
  if (stale !== undefined)
    throw new KilnError('K1016', `'${join(dir, stale)}' is in the way: it lists the shards of a checkpoint in '${dir}' that readers of the folder would load instead of this one; write this model to another folder`);
}

/**
 * Write `tensors` (kiln names) to `target`: a `.safetensors` path, or a directory that gets
 * model.safetensors (or shards and an index). config.json goes beside them. Every file is
 * written whole or none is (see writeFilesAtomic); a folder holding another model's config.json
 * or a shard index this write would not replace is refused (K1016). Returns the paths written.
 */
export function writeSafetensors(target: string, tensors: readonly SafetensorsTensorIn[], config: LlamaConfig, opts: SafetensorsWriteOptions = {}): string[] {
  const c = checkConfig('writeSafetensors', config);
  const isFile = target.endsWith('.safetensors');
  const dir = isFile ? dirname(target) : target;
  const entries: Entry[] = tensors.map((t) => {
    const hf = kilnToHf(t.name);
    if (!hf) throw new TypeError(`writeSafetensors: no Hugging Face name for tensor '${t.name}'`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    let bytes = t.bytes ?? (t.data ? encode(t.dtype, t.data) : undefined);
    if (!bytes || bytes.length !== byteLength(t.dtype, n)) throw new TypeError(`writeSafetensors: tensor '${t.name}' needs ${n} ${t.dtype} values`);
    const heads = ropeHeads(t.name, c.nHeads, c.nKvHeads);
    if (heads !== undefined && c.ropeLayout === 'interleaved') bytes = permuteRopeRows(bytes, t.shape[0]!, heads, 'half');
    return { hf, dtype: t.dtype, shape: t.shape, bytes };
  });
  const shards: Entry[][] = [[]];
  let size = 0;
  for (const e of entries) {
    if (opts.shardBytes !== undefined && size > 0 && size + e.bytes.length > opts.shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(e);
    size += e.bytes.length;
  }
  const files: { path: string; write: FileWriter }[] = [];
  let index: string | undefined;
  if (shards.length === 1 && opts.shardBytes === undefined) files.push(oneFile(isFile ? target : join(dir, 'model.safetensors'), entries));
  else {
    const stem = isFile ? basename(target, '.safetensors') : 'model';
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const f = `${stem}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      files.push(oneFile(join(dir, f), s));
      for (const e of s) weightMap[e.hf] = f;
    });
    const total = entries.reduce((a, e) => a + e.bytes.length, 0);
    index = `${stem}.safetensors.index.json`;
    files.push(textFile(join(dir, index), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)));
  }
  const cfg = JSON.stringify(hfConfigJson(config), null, 2);
  checkFolder(dir, cfg, index);
  files.push(textFile(join(dir, 'config.json'), cfg));
  if (opts.tokenizer) files.push(textFile(join(dir, 'tokenizer.json'), hfTokenizerJson(opts.tokenizer)));
  const made = !isFile && !statSync(dir, { throwIfNoEntry: false }) ? mkdirSync(dir, { recursive: true }) : undefined;
  try {
    writeFilesAtomic(files);
  } catch (e) {
    // The folders made above are empty again: remove them, innermost first (rmdir keeps a folder that is not).
    if (made !== undefined)
      for (let d = resolve(dir); ; d = dirname(d)) {
        try {
          rmdirSync(d);
        } catch {
          break;
        }
        if (d === resolve(made) || d === dirname(d)) break;
      }
    throw e;
  }
  return files.map((f) => f.path);
}
