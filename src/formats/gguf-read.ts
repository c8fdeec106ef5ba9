/**
 * GGUF v2/v3 reader (little-endian). Layout: magic "GGUF", u32 version, u64 tensor count, u64
 * metadata count; metadata key/value pairs; tensor infos (name, dims fastest-first, ggml type,
 * offset into the data section); padding to `general.alignment` (default 32); tensor data.
 * Every count is bounded by the bytes left in the file before anything is allocated, so a
 * corrupt count fails at once instead of hanging.
 */
import type { LlamaConfig } from '../dsl/llama.js';
import type { Checkpoint, CheckpointTensor, TensorDType, TokenizerData } from './checkpoint.js';
import { checkTensors, finiteData, makeTensor, show } from './consistency.js';
import { byteLength } from './dtypes.js';
import { Cursor, FileSource, malformed, quote } from './file.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGML_TYPES: Partial<Record<TensorDType, number>> & Record<string, number> = { f32: 0, f16: 1, q8_0: 8, bf16: 30 };
const TYPE_OF_ID = new Map<number, TensorDType>([[0, 'f32'], [1, 'f16'], [8, 'q8_0'], [30, 'bf16']]);
/** ggml type names kiln cannot read yet, so the error can say what the tensor is. */
const OTHER_TYPES: Record<number, string> = {
  2: 'q4_0', 3: 'q4_1', 6: 'q5_0', 7: 'q5_1', 9: 'q8_1', 10: 'q2_K', 11: 'q3_K', 12: 'q4_K', 13: 'q5_K', 14: 'q6_K', 15: 'q8_K',
  16: 'iq2_xxs', 17: 'iq2_xs', 18: 'iq3_xxs', 19: 'iq1_s', 20: 'iq4_nl', 21: 'iq3_s', 22: 'iq2_s', 23: 'iq4_xs',
  24: 'i8', 25: 'i16', 26: 'i32', 27: 'i64', 28: 'f64', 29: 'iq1_m', 34: 'tq1_0', 35: 'tq2_0',
};

/** GGUF metadata value types. */
export const GV = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
const MIN_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8 };

export interface GgufTensorInfo {
  readonly name: string;
  readonly dtype: TensorDType;
  /** Row-major (GGUF's dims reversed). */
  readonly shape: number[];
  /** Absolute file offset and byte length of the data. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly metadata: Record<string, unknown>;
  readonly tensors: GgufTensorInfo[];
  readonly alignment: number;
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

function readString(c: Cursor): string {
  const n = c.u64();
  if (n > c.remaining) throw malformed(c.src.path, `${c.ctx}: string of ${n} bytes but only ${c.remaining} remain (truncated?)`);
  return utf8.decode(c.bytes(n));
}

function readValue(c: Cursor, type: number, depth: number): unknown {
  switch (type) {
    case GV.u8: return c.u8();
    case GV.i8: return c.i8();
    case GV.u16: return c.u16();
    case GV.i16: return c.i16();
    case GV.u32: return c.u32();
    case GV.i32: return c.i32();
    case GV.f32: return c.f32();
    case GV.f64: return c.f64();
    case GV.u64: return c.u64();
    case GV.i64: return c.i64();
    case GV.bool: {
      const b = c.u8();
      if (b > 1) throw malformed(c.src.path, `${c.ctx}: bool byte is ${b}, expected 0 or 1`);
      return b === 1;
    }
    case GV.string: return readString(c);
    case GV.array: {
      const et = c.u32();
      if (!(et in MIN_SIZE)) throw malformed(c.src.path, `${c.ctx}: unknown array element type ${et}`);
      if (et === GV.array && depth >= 3) throw malformed(c.src.path, `${c.ctx}: arrays nested too deep`);
      const n = c.u64();
      if (n * MIN_SIZE[et]! > c.remaining) throw malformed(c.src.path, `${c.ctx}: array of ${n} elements cannot fit in the ${c.remaining} bytes left (truncated?)`);
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) out[i] = readValue(c, et, depth + 1);
      return out;
    }
    default:
      throw malformed(c.src.path, `${c.ctx}: unknown value type ${type}`);
  }
}

export function readGgufHeader(src: FileSource): GgufHeader {
  const file = src.path;
  const c = new Cursor(src);
  if (src.size < 4 || c.u32() !== GGUF_MAGIC) throw malformed(file, `not a GGUF file (wrong magic; expected "GGUF")`);
  const version = c.u32();
  if (version !== 2 && version !== 3) throw malformed(file, `unsupported GGUF version ${version} (kiln reads 2 and 3)`);
  const nTensors = c.u64();
  const nKv = c.u64();
  if (nKv * 13 > c.remaining) throw malformed(file, `header declares ${nKv} metadata entries; the file is too short for them (truncated?)`);
  if (nTensors * 24 > c.remaining) throw malformed(file, `header declares ${nTensors} tensors; the file is too short for them (truncated?)`);
  const metadata: Record<string, unknown> = {};
  for (let i = 0; i < nKv; i++) {
    c.ctx = `metadata entry #${i}`;
    const key = readString(c);
    c.ctx = `metadata key ${quote(key)}`;
    if (Object.hasOwn(metadata, key)) throw malformed(file, `metadata key ${quote(key)} appears twice`);
    metadata[key] = readValue(c, c.u32(), 0);
  }
  const align = metadata['general.alignment'] ?? 32;
  if (typeof align !== 'number' || !Number.isInteger(align) || align <= 0 || (align & (align - 1)) !== 0 || align > 1 << 20)
    throw malformed(file, `metadata key "general.alignment" is ${show(align)}, expected a power of two`);
  const raw: { name: string; dtype: TensorDType; shape: number[]; rel: number; nbytes: number }[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    c.ctx = `tensor info #${i}`;
    const name = readString(c);
    c.ctx = `tensor info ${quote(name)}`;
    if (seen.has(name)) throw malformed(file, `tensor ${quote(name)} appears twice`);
    seen.add(name);
    const nd = c.u32();
    if (nd < 1 || nd > 4) throw malformed(file, `tensor ${quote(name)} has ${nd} dims, expected 1 to 4`);
    const ne: number[] = [];
    for (let d = 0; d < nd; d++) ne.push(c.u64());
    const typeId = c.u32();
    const rel = c.u64();
    const dtype = TYPE_OF_ID.get(typeId);
    if (!dtype) {
      const what = OTHER_TYPES[typeId] ? `ggml type ${OTHER_TYPES[typeId]} (${typeId})` : `unknown ggml type ${typeId}`;
      throw malformed(file, `tensor ${quote(name)} has ${what}; kiln reads f32, f16, bf16 and q8_0`);
    }
    if (ne.some((d) => d < 1)) throw malformed(file, `tensor ${quote(name)} has a zero dim in [${ne.join(', ')}]`);
    if (dtype === 'q8_0' && ne[0]! % 32 !== 0) throw malformed(file, `q8_0 tensor ${quote(name)} has rows of ${ne[0]} values, expected a multiple of 32`);
    const n = ne.reduce((a, b) => a * b, 1);
    const nbytes = byteLength(dtype, n)!;
    raw.push({ name, dtype, shape: ne.reverse(), rel, nbytes });
  }
  const dataStart = Math.ceil(c.pos / align) * align;
  let next = 0; // where the next tensor's data must start, as in ggml's reader
  const tensors = raw.map((t) => {
    const offset = dataStart + t.rel;
    // Would not fit even where it belongs: a truncated file or a corrupt shape, not an offset.
    if (dataStart + next + t.nbytes > src.size)
      throw malformed(file, `tensor ${quote(t.name)} (${t.dtype} [${t.shape.join(', ')}], ${t.nbytes} bytes at ${offset}) runs past the end of the file at ${src.size} (truncated?)`);
    // Data back to back in tensor-info order, each padded to the alignment: anything else means
    // tensors overlap or stray bytes sit between them, i.e. a corrupt or hand-patched file.
    if (t.rel !== next)
      throw malformed(file, `tensor ${quote(t.name)} data offset is ${t.rel}, expected ${next} (each tensor's data follows the previous one's, padded to the alignment ${align})`);
    next += Math.ceil(t.nbytes / align) * align;
    return { name: t.name, dtype: t.dtype, shape: t.shape, offset, nbytes: t.nbytes };
  });
  return { version, metadata, tensors, alignment: align };
}

/** A metadata number that must be a positive integer (or any finite number when `real`). */
function num(file: string, md: Record<string, unknown>, key: string, fallback?: number, real = false): number {
  const v = md[key] ?? fallback;
  if (v === undefined) throw malformed(file, `metadata key ${quote(key)} is missing`);
  if (typeof v !== 'number' || !Number.isFinite(v) || (!real && (!Number.isInteger(v) || v <= 0)))
    throw malformed(file, `metadata key ${quote(key)} is ${show(v)}, expected ${real ? 'a number' : 'a positive integer'}`);
  return v;
}

export function ggufConfig(file: string, md: Record<string, unknown>, tensorShapes: ReadonlyMap<string, readonly number[]>): LlamaConfig {
  const arch = md['general.architecture'];
  if (arch !== 'llama') throw malformed(file, `metadata key "general.architecture" is ${show(arch)}, expected "llama"`);
  const dim = num(file, md, 'llama.embedding_length');
  const nHeads = num(file, md, 'llama.attention.head_count');
  const tokens = md['tokenizer.ggml.tokens'];
  const embd = tensorShapes.get('token_embd.weight');
  const vocabSize = Array.isArray(tokens) ? tokens.length : md['llama.vocab_size'] !== undefined ? num(file, md, 'llama.vocab_size') : embd?.[0];
  // two counts of the vocabulary that disagree: one of them is wrong, and the file cannot say which
  if (Array.isArray(tokens) && md['llama.vocab_size'] !== undefined && num(file, md, 'llama.vocab_size') !== tokens.length)
    throw malformed(file, `metadata key "llama.vocab_size" is ${num(file, md, 'llama.vocab_size')}, but tokenizer.ggml.tokens lists ${tokens.length} tokens`);
  if (vocabSize === undefined) throw malformed(file, 'no vocabulary size: no tokenizer.ggml.tokens, llama.vocab_size or token_embd.weight');
  if (dim % nHeads !== 0)
    throw malformed(file, `metadata key "llama.embedding_length" (${dim}) must be divisible by "llama.attention.head_count" (${nHeads})`);
  // Checked here in GGUF's terms, so the message names the file's keys, not kiln's config fields.
  const nKvHeads = num(file, md, 'llama.attention.head_count_kv', nHeads);
  if (nHeads % nKvHeads !== 0)
    throw malformed(file, `metadata key "llama.attention.head_count" (${nHeads}) must be divisible by "llama.attention.head_count_kv" (${nKvHeads})`);
  if ((dim / nHeads) % 2 !== 0)
    throw malformed(file, `"llama.embedding_length" / "llama.attention.head_count" = ${dim / nHeads} is the head dim, which must be even for RoPE`);
  const ropeBase = num(file, md, 'llama.rope.freq_base', 10000, true);
  if (!(ropeBase > 1)) throw malformed(file, `metadata key "llama.rope.freq_base" is ${ropeBase}, expected a number above 1`);
  const normEps = num(file, md, 'llama.attention.layer_norm_rms_epsilon', 1e-5, true);
  if (!(normEps > 0)) throw malformed(file, `metadata key "llama.attention.layer_norm_rms_epsilon" is ${normEps}, expected a positive number`);
  const rot = md['llama.rope.dimension_count'];
  if (rot !== undefined && rot !== dim / nHeads)
    throw malformed(file, `metadata key "llama.rope.dimension_count" is ${show(rot)}, expected the head dim ${dim / nHeads} (kiln rotates whole heads)`);
  // RoPE scaling changes the rotation angles; kiln's rope has none, so running would be wrong.
  // (llama.cpp reads a factor of 0 as "no scaling", like 1.)
  const scaling = md['llama.rope.scaling.type'];
  if (scaling !== undefined && scaling !== 'none')
    throw malformed(file, `metadata key "llama.rope.scaling.type" is ${show(scaling)}; kiln does not support RoPE scaling`);
  for (const key of ['llama.rope.scaling.factor', 'llama.rope.scale_linear']) {
    const f = md[key];
    if (f !== undefined && f !== 1 && f !== 0) throw malformed(file, `metadata key ${quote(key)} is ${show(f)}; kiln does not support RoPE scaling (factor must be 1)`);
  }
  const name = md['general.name'];
  return {
    ...(typeof name === 'string' && name !== '' ? { name } : {}),
    vocabSize,
    dim,
    nLayers: num(file, md, 'llama.block_count'),
    nHeads,
    nKvHeads,
    hiddenDim: num(file, md, 'llama.feed_forward_length'),
    maxSeqLen: num(file, md, 'llama.context_length'),
    ropeBase,
    ropeLayout: 'interleaved',
    normEps,
    tiedEmbeddings: !tensorShapes.has('output.weight'),
  };
}

/** The tokenizer in GGUF metadata, if it is a SentencePiece ('llama') one. */
export function ggufTokenizer(file: string, md: Record<string, unknown>): TokenizerData | undefined {
  if (md['tokenizer.ggml.model'] !== 'llama') return undefined;
  const tokens = md['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) throw malformed(file, 'metadata key "tokenizer.ggml.tokens" is missing or not an array of strings');
  const n = tokens.length;
  const arr = (key: string, fill: number): number[] => {
    const v = md[key];
    if (v === undefined) return new Array<number>(n).fill(fill);
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number'))
      throw malformed(file, `metadata key ${quote(key)} must be an array of ${n} numbers (one per token)`);
    return v as number[];
  };
  const id = (key: string, fallback: number): number => {
    const v = md[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= n) throw malformed(file, `metadata key ${quote(key)} is ${show(v)}, expected a token id below ${n}`);
    return v;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const v = md[key] ?? fallback;
    if (typeof v !== 'boolean') throw malformed(file, `metadata key ${quote(key)} is ${show(v)}, expected a bool`);
    return v;
  };
  return {
    model: 'llama',
    tokens: tokens as string[],
    scores: arr('tokenizer.ggml.scores', 0),
    types: arr('tokenizer.ggml.token_type', 1),
    bos: id('tokenizer.ggml.bos_token_id', 1),
    eos: id('tokenizer.ggml.eos_token_id', 2),
    unk: id('tokenizer.ggml.unknown_token_id', 0),
    addBos: flag('tokenizer.ggml.add_bos_token', true),
    addSpacePrefix: flag('tokenizer.ggml.add_space_prefix', true),
  };
}

export function readGguf(path: string): Checkpoint {
  const src = FileSource.open(path);
  try {
    const h = readGgufHeader(src);
    const shapes = new Map(h.tensors.map((t) => [t.name, t.shape]));
    const config = ggufConfig(path, h.metadata, shapes);
    const tokenizer = ggufTokenizer(path, h.metadata);
    // Check shapes before reading any data, so a bad file costs no big reads.
    const stubs = new Map(h.tensors.map((t) => [t.name, makeTensor(t.name, t.dtype, t.shape, new Uint8Array(0))]));
    checkTensors(path, config, stubs);
    const tensors = new Map<string, CheckpointTensor>();
    for (const t of h.tensors) tensors.set(t.name, makeTensor(t.name, t.dtype, t.shape, finiteData(path, t.name, t.dtype, src.read(t.offset, t.nbytes, `tensor ${quote(t.name)}`))));
    return { file: path, format: 'gguf', config, tensors, ...(tokenizer ? { tokenizer } : {}), metadata: h.metadata };
  } finally {
    src.close();
  }
}
