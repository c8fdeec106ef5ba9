/**
 * safetensors writer: Hugging Face names, a config.json beside the weights, files written
 * atomically. HF stores q/k rows for the rotate-half RoPE layout, so tensors given for an
 * interleaved config (GGUF's, llama2.c's — the default) are permuted per head on the way out;
 * tensors for a `ropeLayout: 'half'` config are written as they are.
 */
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { LlamaConfig } from '../dsl/llama.js';
import type { TensorDType } from './checkpoint.js';
import { checkConfig } from './consistency.js';
import { byteLength, encode } from './dtypes.js';
import { writeAtomic } from './file.js';
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

function writeOne(path: string, entries: { hf: string; dtype: keyof typeof ST_DTYPE; shape: readonly number[]; bytes: Uint8Array }[]): void {
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
  writeAtomic(path, (put) => {
    put(len);
    put(h);
    for (const e of entries) put(e.bytes);
  });
}

/**
 * Write `tensors` (kiln names) to `target`: a `.safetensors` path, or a directory that gets
 * model.safetensors (or shards and an index). config.json goes beside them.
 */
export function writeSafetensors(target: string, tensors: readonly SafetensorsTensorIn[], config: LlamaConfig, opts: SafetensorsWriteOptions = {}): void {
  const c = checkConfig('writeSafetensors', config);
  const isFile = target.endsWith('.safetensors');
  const dir = isFile ? dirname(target) : target;
  if (!isFile && !statSync(dir, { throwIfNoEntry: false })) mkdirSync(dir, { recursive: true });
  const entries = tensors.map((t) => {
    const hf = kilnToHf(t.name);
    if (!hf) throw new TypeError(`writeSafetensors: no Hugging Face name for tensor '${t.name}'`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    let bytes = t.bytes ?? (t.data ? encode(t.dtype, t.data) : undefined);
    if (!bytes || bytes.length !== byteLength(t.dtype, n)) throw new TypeError(`writeSafetensors: tensor '${t.name}' needs ${n} ${t.dtype} values`);
    const heads = ropeHeads(t.name, c.nHeads, c.nKvHeads);
    if (heads !== undefined && c.ropeLayout === 'interleaved') bytes = permuteRopeRows(bytes, t.shape[0]!, heads, 'half');
    return { hf, dtype: t.dtype, shape: t.shape, bytes };
  });
  const shards: (typeof entries)[] = [[]];
  let size = 0;
  for (const e of entries) {
    if (opts.shardBytes !== undefined && size > 0 && size + e.bytes.length > opts.shardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(e);
    size += e.bytes.length;
  }
  if (shards.length === 1 && opts.shardBytes === undefined) writeOne(isFile ? target : join(dir, 'model.safetensors'), entries);
  else {
    const stem = isFile ? basename(target, '.safetensors') : 'model';
    const pad = (i: number) => String(i).padStart(5, '0');
    const weightMap: Record<string, string> = {};
    shards.forEach((s, i) => {
      const f = `${stem}-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
      writeOne(join(dir, f), s);
      for (const e of s) weightMap[e.hf] = f;
    });
    const total = entries.reduce((a, e) => a + e.bytes.length, 0);
    const index = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2);
    writeAtomic(join(dir, `${stem}.safetensors.index.json`), (put) => put(new TextEncoder().encode(index)));
  }
  const cfg = JSON.stringify(hfConfigJson(config), null, 2);
  writeAtomic(join(dir, 'config.json'), (put) => put(new TextEncoder().encode(cfg)));
}
