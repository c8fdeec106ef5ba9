/**
 * What every reader does after parsing: make CheckpointTensors, check the config the file's
 * metadata gives, and check that each tensor the llama graph needs is there with the shape that
 * config implies — so a loaded Checkpoint is always one `llama(config)` can run.
 */
import { KilnError } from '../../graph/errors.js';
import { type LlamaConfig, type NormalizedLlamaConfig, normalizeLlamaConfig } from '../dsl/llama.js';
import type { CheckpointTensor, TensorDType } from './checkpoint.js';
import { decode, DTYPE_BYTES } from './dtypes.js';
import { malformed, quote } from './file.js';

/**
 * A metadata or config value for a message: NaN and Infinity as such (JSON would say null),
 * strings quoted once, numbers bare, anything else as (cut-short) JSON.
 */
export function show(v: unknown): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (typeof v === 'string') return quote(v);
  const j = JSON.stringify(v) ?? String(v);
  return j.length > 80 ? `${j.slice(0, 77)}…` : j;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Index of the first element that dequantises to NaN or ±Inf, or -1. Tests the exponent bits
 * through a u32/u16 view rather than decoding (a 440 MB f32 file costs ~0.2 s and no copy); a
 * q8_0 value is non-finite exactly when its block's f16 scale is (the int8 quants are finite).
 */
export function firstNonFinite(dtype: TensorDType, b: Uint8Array): number {
  if (dtype === 'q8_0') {
    for (let i = 1; i < b.length; i += 34) if ((b[i]! & 0x7c) === 0x7c) return ((i - 1) / 34) * 32;
    return -1;
  }
  if (!LITTLE_ENDIAN) {
    const f = decode(dtype, b);
    return f.findIndex((x) => !Number.isFinite(x));
  }
  const size = DTYPE_BYTES[dtype];
  const a = b.byteOffset % size === 0 ? b : b.slice(); // typed-array views need aligned bytes
  if (dtype === 'f32') return firstMasked(new Uint32Array(a.buffer, a.byteOffset, a.length / 4), 0x7f800000);
  return firstMasked(new Uint16Array(a.buffer, a.byteOffset, a.length / 2), dtype === 'f16' ? 0x7c00 : 0x7f80);
}

/** First index whose exponent bits (`mask`) are all set: an Inf or NaN. */
function firstMasked(u: Uint32Array | Uint16Array, mask: number): number {
  for (let i = 0; i < u.length; i++) if ((u[i]! & mask) === mask) return i;
  return -1;
}

/** `bytes`, after checking they hold no NaN/Inf: such weights only ever give garbage tokens. */
export function finiteData(file: string, name: string, dtype: TensorDType, bytes: Uint8Array): Uint8Array {
  const i = firstNonFinite(dtype, bytes);
  if (i >= 0) {
    const block = dtype === 'q8_0' ? 34 : DTYPE_BYTES[dtype];
    const at = dtype === 'q8_0' ? (i / 32) * 34 : i * block;
    const v = decode(dtype, bytes.subarray(at, at + block))[0]!;
    throw malformed(file, `tensor ${quote(name)} holds ${String(v)} at element ${i}; the weights are corrupt (non-finite)`);
  }
  return bytes;
}

export function makeTensor(name: string, dtype: TensorDType, shape: readonly number[], bytes: Uint8Array): CheckpointTensor {
  return { name, dtype, shape: [...shape], bytes, toFloat32: () => decode(dtype, bytes) };
}

/** The shape each llama param must have, with a reason a user can check against the metadata. */
export function expectedShapes(c: NormalizedLlamaConfig): Map<string, { shape: number[]; why: string }> {
  return new Map(expectedShapeEntries(c));
}

/** The same, lazily: a corrupt block_count of 2^31 then fails at the first missing tensor. */
export function* expectedShapeEntries(c: NormalizedLlamaConfig): Generator<[string, { shape: number[]; why: string }]> {
  const e = (k: string, shape: number[], why: string): [string, { shape: number[]; why: string }] => [k, { shape, why }];
  const { vocabSize: V, dim: D, hiddenDim: F, headDim: hd } = c;
  yield e('token_embd.weight', [V, D], `[vocab, dim] = [${V}, ${D}]`);
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}`;
    yield e(`${b}.attn_norm.weight`, [D], `[dim]`);
    yield e(`${b}.attn_q.weight`, [c.nHeads * hd, D], `[head_count·head_dim, dim] = [${c.nHeads}·${hd}, ${D}]`);
    yield e(`${b}.attn_k.weight`, [c.nKvHeads * hd, D], `[head_count_kv·head_dim, dim] = [${c.nKvHeads}·${hd}, ${D}]`);
    yield e(`${b}.attn_v.weight`, [c.nKvHeads * hd, D], `[head_count_kv·head_dim, dim] = [${c.nKvHeads}·${hd}, ${D}]`);
    yield e(`${b}.attn_output.weight`, [D, c.nHeads * hd], `[dim, head_count·head_dim]`);
    yield e(`${b}.ffn_norm.weight`, [D], `[dim]`);
    yield e(`${b}.ffn_gate.weight`, [F, D], `[feed_forward_length, dim] = [${F}, ${D}]`);
    yield e(`${b}.ffn_up.weight`, [F, D], `[feed_forward_length, dim] = [${F}, ${D}]`);
    yield e(`${b}.ffn_down.weight`, [D, F], `[dim, feed_forward_length] = [${D}, ${F}]`);
  }
  yield e('output_norm.weight', [D], `[dim]`);
  if (!c.tiedEmbeddings) yield e('output.weight', [V, D], `[vocab, dim] = [${V}, ${D}] (no output.weight would mean a tied head)`);
}

/** `config` normalised, or a K1021 error naming the file (a config is the file's fault here). */
export function checkConfig(file: string, config: LlamaConfig): NormalizedLlamaConfig {
  try {
    return normalizeLlamaConfig(config, undefined);
  } catch (e) {
    if (e instanceof KilnError) throw malformed(file, `metadata gives an invalid model config: ${e.message}`);
    throw e;
  }
}

/**
 * Check tensors against the config. `display` maps a kiln name to the file's own name for
 * messages (a safetensors file says `model.layers.3.self_attn.k_proj.weight`).
 */
export function checkTensors(
  file: string,
  config: LlamaConfig,
  tensors: ReadonlyMap<string, CheckpointTensor>,
  display: (kilnName: string) => string = (n) => n,
): void {
  const c = checkConfig(file, config);
  const used = new Set<string>();
  for (const [name, { shape, why }] of expectedShapeEntries(c)) {
    used.add(name);
    const t = tensors.get(name);
    if (!t) throw malformed(file, `missing tensor ${quote(display(name))} of shape [${shape.join(', ')}] ${why}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw malformed(file, `tensor ${quote(display(name))} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] ${why}`);
  }
  // A tensor the graph would not use means the file and its config disagree (a layer past the
  // layer count, a misspelt name): running it anyway would silently be a different model.
  for (const name of tensors.keys())
    if (!used.has(name)) throw malformed(file, `unexpected tensor ${quote(display(name))}: the llama config (${c.nLayers} layer${c.nLayers === 1 ? '' : 's'}) does not use it`);
}
