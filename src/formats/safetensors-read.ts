/**
 * safetensors reader: one file, or shards listed by `model.safetensors.index.json`
 * (`weight_map`: tensor → file), with the model config from `config.json` beside them.
 *
 * A file is a u64 header length N, N bytes of JSON ({name: {dtype, shape, data_offsets}}), then
 * the data. Names are Hugging Face's, mapped to kiln's on load. HF checkpoints store the q/k rows
 * for the rotate-half RoPE layout; kiln's rope op has a layout attribute, so the config says
 * `ropeLayout: 'half'` and the weights are used as stored, with no permutation on load (convert
 * permutes them when writing GGUF, whose llama RoPE is the interleaved layout).
 */
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { LlamaConfig } from '../dsl/llama.js';
import type { Checkpoint, CheckpointTensor, LoadOptions, TensorDType } from './checkpoint.js';
import { checkTensors, finiteData, makeTensor, show } from './consistency.js';
import { byteLength } from './dtypes.js';
import { Cursor, FileSource, malformed, quote } from './file.js';
import { hfToKiln, kilnToHf } from './hf-names.js';
import { loadSideTokenizer } from './tokenizer-hook.js';

const DTYPES: Record<string, TensorDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const MAX_JSON = 100 << 20;

interface StEntry {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: number[];
  readonly offset: number;
  readonly nbytes: number;
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseJson(file: string, text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw malformed(file, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

/** The header of one .safetensors file: its tensors with absolute offsets, all inside the file. */
export function readSafetensorsHeader(src: FileSource): { entries: StEntry[]; metadata: Record<string, unknown> } {
  const file = src.path;
  const c = new Cursor(src);
  c.ctx = 'the header length';
  const n = c.u64();
  if (n > c.remaining || n > MAX_JSON) throw malformed(file, `header length ${n} does not fit the ${c.remaining} bytes after it (not safetensors, or truncated?)`);
  c.ctx = 'the JSON header';
  const header = parseJson(file, new TextDecoder().decode(c.bytes(n)), 'the header');
  if (!isObject(header)) throw malformed(file, 'the header is not a JSON object');
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;
  const entries: StEntry[] = [];
  let metadata: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (isObject(v)) metadata = v;
      continue;
    }
    const t = quote(name);
    if (!isObject(v)) throw malformed(file, `tensor ${t}: header entry is not an object`);
    const dtype = typeof v['dtype'] === 'string' ? DTYPES[v['dtype']] : undefined;
    if (!dtype) throw malformed(file, `tensor ${t} has dtype ${quote(String(v['dtype']))}; kiln reads F32, F16 and BF16`);
    const shape = v['shape'];
    if (!Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw malformed(file, `tensor ${t}: shape ${quote(JSON.stringify(shape))} is not a list of non-negative integers`);
    const off = v['data_offsets'];
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1])
      throw malformed(file, `tensor ${t}: data_offsets ${quote(JSON.stringify(off))} is not [begin, end]`);
    const [b, e] = off as [number, number];
    const numel = (shape as number[]).reduce((a, d) => a * d, 1);
    const want = byteLength(dtype, numel)!;
    if (e - b !== want) throw malformed(file, `tensor ${t} (${dtype} [${shape.join(', ')}]) has ${e - b} bytes, expected ${want}`);
    if (e > dataLen) throw malformed(file, `tensor ${t} ends at data byte ${e} but the file holds ${dataLen} (truncated?)`);
    entries.push({ name, dtype, shape: shape as number[], offset: dataStart + b, nbytes: want });
  }
  // As the safetensors library requires: the data is the tensors back to back from byte 0, with
  // no overlap, gap or trailing bytes. Anything else is a corrupt or hand-patched file.
  const spans = entries.map((x) => ({ name: x.name, b: x.offset - dataStart, e: x.offset - dataStart + x.nbytes })).sort((x, y) => x.b - y.b || x.e - y.e);
  let prev: { name: string; b: number; e: number } | undefined;
  for (const sp of spans) {
    const end = prev?.e ?? 0;
    if (prev && sp.b < end)
      throw malformed(file, `tensors ${quote(prev.name)} (data bytes ${prev.b}..${prev.e}) and ${quote(sp.name)} (data bytes ${sp.b}..${sp.e}) overlap`);
    if (sp.b > end)
      throw malformed(file, `tensor ${quote(sp.name)} starts at data byte ${sp.b}, expected ${end} (right after ${prev ? `tensor ${quote(prev.name)}` : 'the header'}; data must be contiguous)`);
    prev = sp;
  }
  if ((prev?.e ?? 0) !== dataLen)
    throw malformed(file, `the tensors' data ends at byte ${prev?.e ?? 0} but the file holds ${dataLen} bytes of data (stray bytes at the end)`);
  return { entries, metadata };
}

/** LlamaConfig from an HF config.json. */
export function hfConfig(file: string): LlamaConfig {
  let text: string;
  try {
    if (statSync(file).size > MAX_JSON) throw malformed(file, 'config.json is too large');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'K1021') throw e;
    throw malformed(file, `cannot read the model config beside the weights: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const j = parseJson(file, text, 'config.json');
  if (!isObject(j)) throw malformed(file, 'config.json is not a JSON object');
  const int = (k: string, fallback?: number): number => {
    const v = j[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw malformed(file, `${quote(k)} is ${show(v)}, expected a positive integer`);
    return v;
  };
  const real = (k: string, fallback: number): number => {
    const v = j[k] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw malformed(file, `${quote(k)} is ${show(v)}, expected a number`);
    return v;
  };
  const unsupported = (k: string, what: string) => malformed(file, `${quote(k)} is ${show(j[k])}; kiln does not support ${what}`);
  // Keys that change the maths of kiln's llama graph: refuse them rather than run another model.
  const type = j['model_type'];
  if (type !== undefined && type !== 'llama' && type !== 'mistral') throw unsupported('model_type', 'this architecture (kiln runs "llama" and "mistral")');
  if (j['rope_scaling'] != null) throw unsupported('rope_scaling', 'RoPE scaling');
  if (j['attention_bias'] === true) throw unsupported('attention_bias', 'attention biases');
  if (j['mlp_bias'] === true) throw unsupported('mlp_bias', 'MLP biases');
  const act = j['hidden_act'];
  if (act !== undefined && act !== 'silu') throw malformed(file, `"hidden_act" is ${show(act)}; kiln's llama uses "silu"`);
  const tie = j['tie_word_embeddings'] ?? false;
  if (typeof tie !== 'boolean') throw malformed(file, `"tie_word_embeddings" is ${show(tie)}, expected a bool`);
  const dim = int('hidden_size');
  const nHeads = int('num_attention_heads');
  const nKvHeads = int('num_key_value_heads', nHeads);
  const maxSeqLen = int('max_position_embeddings');
  const sw = j['sliding_window'];
  if (type === 'mistral' && sw != null && !(typeof sw === 'number' && sw >= maxSeqLen))
    throw unsupported('sliding_window', `sliding-window attention (it would need to be at least max_position_embeddings, ${maxSeqLen})`);
  // Checked here in HF's terms, so the message names config.json's keys, not kiln's.
  if (dim % nHeads !== 0) throw malformed(file, `"hidden_size" (${dim}) must be divisible by "num_attention_heads" (${nHeads})`);
  if (nHeads % nKvHeads !== 0) throw malformed(file, `"num_attention_heads" (${nHeads}) must be divisible by "num_key_value_heads" (${nKvHeads})`);
  if ((dim / nHeads) % 2 !== 0) throw malformed(file, `"hidden_size" / "num_attention_heads" = ${dim / nHeads} is the head dim, which must be even for RoPE`);
  if (j['head_dim'] !== undefined && j['head_dim'] !== dim / nHeads)
    throw malformed(file, `"head_dim" is ${show(j['head_dim'])}; kiln needs hidden_size / num_attention_heads = ${dim / nHeads}`);
  const ropeBase = real('rope_theta', 10000);
  if (!(ropeBase > 1)) throw malformed(file, `"rope_theta" is ${ropeBase}, expected a number above 1`);
  const normEps = real('rms_norm_eps', 1e-6);
  if (!(normEps > 0)) throw malformed(file, `"rms_norm_eps" is ${normEps}, expected a positive number`);
  const name = j['_name_or_path'];
  return {
    ...(typeof name === 'string' && name !== '' ? { name } : {}),
    vocabSize: int('vocab_size'),
    dim,
    nLayers: int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    hiddenDim: int('intermediate_size'),
    maxSeqLen,
    ropeBase,
    ropeLayout: 'half',
    normEps,
    tiedEmbeddings: tie,
  };
}

/** Which files hold which tensors: a directory, an index JSON, or one .safetensors file. */
function shardsOf(path: string): { dir: string; files: Map<string, string[] | undefined>; label: string } {
  let p = path;
  if (statSync(p).isDirectory()) {
    const idx = join(p, 'model.safetensors.index.json');
    p = statSync(idx, { throwIfNoEntry: false }) ? idx : join(p, 'model.safetensors');
  }
  const dir = dirname(p);
  if (!p.endsWith('.json')) return { dir, files: new Map([[p, undefined]]), label: p };
  const size = statSync(p, { throwIfNoEntry: false })?.size;
  if (size === undefined) throw malformed(p, 'not found');
  if (size > MAX_JSON) throw malformed(p, 'index is too large');
  const j = parseJson(p, readFileSync(p, 'utf8'), 'the index');
  const wm = isObject(j) ? j['weight_map'] : undefined;
  if (!isObject(wm)) throw malformed(p, 'no "weight_map" object in the index');
  const files = new Map<string, string[]>();
  for (const [t, f] of Object.entries(wm)) {
    if (typeof f !== 'string' || f !== basename(f)) throw malformed(p, `weight_map entry ${quote(t)} names ${quote(String(f))}, expected a file name beside the index`);
    const full = join(dir, f);
    files.set(full, [...(files.get(full) ?? []), t]);
  }
  return { dir, files, label: p };
}

export async function readSafetensors(path: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const { dir, files, label } = shardsOf(path);
  const config = hfConfig(join(dir, 'config.json'));
  const pending: { src: FileSource; e: StEntry; kiln: string }[] = [];
  const srcs: FileSource[] = [];
  const tensors = new Map<string, CheckpointTensor>();
  let metadata: Record<string, unknown> = {};
  try {
    for (const [file, wanted] of files) {
      const src = FileSource.open(file);
      srcs.push(src);
      const h = readSafetensorsHeader(src);
      metadata = { ...metadata, ...h.metadata };
      const byName = new Map(h.entries.map((e) => [e.name, e]));
      for (const w of wanted ?? []) if (!byName.has(w)) throw malformed(file, `tensor ${quote(w)} is listed in the index but not in this shard`);
      for (const e of wanted ? wanted.map((w) => byName.get(w)!) : h.entries) {
        const kiln = hfToKiln(e.name);
        // Older transformers saved RoPE's inverse frequencies; kiln computes them from rope_theta.
        if (kiln === undefined && /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(e.name)) continue;
        if (kiln === undefined) throw malformed(file, `unexpected tensor ${quote(e.name)}: not a llama weight kiln uses (biases and other architectures are not supported)`);
        // A tied model's stored lm_head is ignored by transformers too: it uses the embedding.
        if (kiln === 'output.weight' && config.tiedEmbeddings) continue;
        if (tensors.has(kiln)) throw malformed(file, `tensor ${quote(e.name)} appears twice`);
        tensors.set(kiln, makeTensor(kiln, e.dtype, e.shape, new Uint8Array(0)));
        pending.push({ src, e, kiln });
      }
    }
    checkTensors(label, config, tensors, (n) => kilnToHf(n) ?? n);
    for (const { src, e, kiln } of pending) tensors.set(kiln, makeTensor(kiln, e.dtype, e.shape, finiteData(src.path, e.name, e.dtype, src.read(e.offset, e.nbytes, `tensor ${quote(e.name)}`))));
  } finally {
    for (const s of srcs) s.close();
  }
  const tokPath = opts.tokenizer ?? join(dir, 'tokenizer.json');
  const tokenizer = await loadSideTokenizer('tokenizerFromHfJson', tokPath, [], opts.tokenizer !== undefined);
  return { file: label, format: 'safetensors', config, tensors, ...(tokenizer ? { tokenizer } : {}), metadata };
}
