/**
 * GGUF v3 writer (little-endian, 32-byte alignment), written atomically. Metadata values are
 * typed by inference (string, bool, integer → u32/i32/u64, other number → f32, arrays likewise)
 * unless wrapped with `typed(...)`; llama.cpp checks each key's type, so `llamaGgufMetadata`
 * types every key explicitly.
 */
import type { LlamaConfig } from '../dsl/llama.js';
import type { TensorDType, TokenizerData } from './checkpoint.js';
import { checkConfig } from './consistency.js';
import { byteLength, encode } from './dtypes.js';
import { writeAtomic } from './file.js';
import { GGML_TYPES, GGUF_MAGIC, GV } from './gguf-read.js';

type Scalar = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
export type GgufType = Scalar | `${Scalar}[]`;

export class Typed {
  constructor(
    readonly type: GgufType,
    readonly value: unknown,
  ) {}
}
/** A metadata value with its GGUF type spelled out. */
export const typed = (type: GgufType, value: unknown): Typed => new Typed(type, value);

export interface GgufTensorIn {
  /** kiln/GGUF name. */
  readonly name: string;
  readonly dtype: TensorDType;
  /** Row-major. */
  readonly shape: readonly number[];
  /** Values to encode as `dtype`… */
  readonly data?: Float32Array;
  /** …or bytes already in `dtype`'s encoding (copied as they are). */
  readonly bytes?: Uint8Array;
}

export interface GgufOut {
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly tensors: readonly GgufTensorIn[];
}

const ALIGN = 32;

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  private put(n: number, f: (dv: DataView) => void): void {
    const b = new Uint8Array(n);
    f(new DataView(b.buffer));
    this.raw(b);
  }
  raw(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u8 = (v: number) => this.put(1, (d) => d.setUint8(0, v));
  i8 = (v: number) => this.put(1, (d) => d.setInt8(0, v));
  u16 = (v: number) => this.put(2, (d) => d.setUint16(0, v, true));
  i16 = (v: number) => this.put(2, (d) => d.setInt16(0, v, true));
  u32 = (v: number) => this.put(4, (d) => d.setUint32(0, v, true));
  i32 = (v: number) => this.put(4, (d) => d.setInt32(0, v, true));
  f32 = (v: number) => this.put(4, (d) => d.setFloat32(0, v, true));
  f64 = (v: number) => this.put(8, (d) => d.setFloat64(0, v, true));
  u64 = (v: number) => this.put(8, (d) => d.setBigUint64(0, BigInt(v), true));
  i64 = (v: number) => this.put(8, (d) => d.setBigInt64(0, BigInt(v), true));
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.raw(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) out.set(c, (o += c.length) - c.length);
    return out;
  }
}

function inferType(v: unknown, key: string): GgufType {
  if (v instanceof Typed) return v.type;
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return !Number.isInteger(v) ? 'f32' : v < 0 ? (v >= -(2 ** 31) ? 'i32' : 'i64') : v < 2 ** 32 ? 'u32' : 'u64';
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return 'string[]';
    if (v.every((x) => typeof x === 'boolean')) return 'bool[]';
    if (v.every((x) => typeof x === 'number')) return v.every(Number.isInteger) ? 'i32[]' : 'f32[]';
  }
  throw new TypeError(`writeGguf: cannot infer a GGUF type for metadata key '${key}'; wrap the value with typed()`);
}

function putScalar(b: Bytes, t: Scalar, v: unknown): void {
  if (t === 'string') b.str(String(v));
  else if (t === 'bool') b.u8(v ? 1 : 0);
  else b[t](Number(v));
}

function putValue(b: Bytes, t: GgufType, v: unknown): void {
  if (t.endsWith('[]')) {
    const et = t.slice(0, -2) as Scalar;
    const arr = v as unknown[];
    b.u32(GV[et]);
    b.u64(arr.length);
    for (const x of arr) putScalar(b, et, x);
  } else putScalar(b, t as Scalar, v);
}

export function writeGguf(path: string, out: GgufOut): void {
  const h = new Bytes();
  h.u32(GGUF_MAGIC);
  h.u32(3);
  h.u64(out.tensors.length);
  const md = { ...out.metadata, 'general.alignment': typed('u32', ALIGN) };
  h.u64(Object.keys(md).length);
  for (const [k, v] of Object.entries(md)) {
    const t = inferType(v, k);
    h.str(k);
    h.u32(t.endsWith('[]') ? GV.array : GV[t as Scalar]);
    putValue(h, t, v instanceof Typed ? v.value : v);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of out.tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytes = t.bytes ?? (t.data ? encode(t.dtype, t.data) : undefined);
    if (!bytes) throw new TypeError(`writeGguf: tensor '${t.name}' has neither data nor bytes`);
    if (t.data && t.data.length !== n) throw new TypeError(`writeGguf: tensor '${t.name}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    if (bytes.length !== byteLength(t.dtype, n)) throw new TypeError(`writeGguf: tensor '${t.name}' (${t.dtype} [${t.shape.join(', ')}]) has ${bytes.length} bytes`);
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d); // GGUF lists dims fastest-first
    h.u32(GGML_TYPES[t.dtype]!);
    h.u64(offset);
    blobs.push(bytes);
    offset += Math.ceil(bytes.length / ALIGN) * ALIGN;
  }
  const header = h.concat();
  writeAtomic(path, (put) => {
    put(header);
    put(new Uint8Array(Math.ceil(header.length / ALIGN) * ALIGN - header.length));
    for (const b of blobs) {
      put(b);
      put(new Uint8Array(Math.ceil(b.length / ALIGN) * ALIGN - b.length));
    }
  });
}

/**
 * The metadata llama.cpp needs to load a llama model, with the types it checks. Without a
 * tokenizer, `tokenizer.ggml.model` is "none" (llama.cpp then loads the model with no vocab).
 * Floats are stored as f32, as llama.cpp requires, so eps 1e-6 reads back as fround(1e-6).
 */
export function llamaGgufMetadata(config: LlamaConfig, tokenizer?: TokenizerData): Record<string, unknown> {
  const c = checkConfig('llamaGgufMetadata', config);
  const u32 = (v: number) => typed('u32', v);
  const md: Record<string, unknown> = {
    'general.architecture': 'llama',
    'general.name': c.name,
    'llama.context_length': u32(c.maxSeqLen),
    'llama.embedding_length': u32(c.dim),
    'llama.block_count': u32(c.nLayers),
    'llama.feed_forward_length': u32(c.hiddenDim),
    'llama.attention.head_count': u32(c.nHeads),
    'llama.attention.head_count_kv': u32(c.nKvHeads),
    'llama.rope.dimension_count': u32(c.headDim),
    'llama.rope.freq_base': typed('f32', c.ropeBase),
    'llama.attention.layer_norm_rms_epsilon': typed('f32', c.normEps),
    'llama.vocab_size': u32(c.vocabSize),
  };
  if (!tokenizer) return { ...md, 'tokenizer.ggml.model': 'none' };
  return {
    ...md,
    'tokenizer.ggml.model': 'llama',
    'tokenizer.ggml.tokens': typed('string[]', tokenizer.tokens),
    'tokenizer.ggml.scores': typed('f32[]', tokenizer.scores),
    'tokenizer.ggml.token_type': typed('i32[]', tokenizer.types),
    'tokenizer.ggml.bos_token_id': u32(tokenizer.bos),
    'tokenizer.ggml.eos_token_id': u32(tokenizer.eos),
    'tokenizer.ggml.unknown_token_id': u32(tokenizer.unk),
    'tokenizer.ggml.add_bos_token': tokenizer.addBos,
    'tokenizer.ggml.add_space_prefix': tokenizer.addSpacePrefix,
  };
}
