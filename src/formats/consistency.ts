/**
 * What every reader does after parsing: make CheckpointTensors, check the config the file's
 * metadata gives, and check that each tensor the llama graph needs is there with the shape that
 * config implies — so a loaded Checkpoint is always one `llama(config)` can run.
 */
import { KilnError } from '../../graph/errors.js';
import { type LlamaConfig, type NormalizedLlamaConfig, normalizeLlamaConfig } from '../dsl/llama.js';
import type { CheckpointTensor, TensorDType } from './checkpoint.js';
import { decode } from './dtypes.js';
import { malformed, quote } from './file.js';

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
  for (const [name, { shape, why }] of expectedShapeEntries(c)) {
    const t = tensors.get(name);
    if (!t) throw malformed(file, `missing tensor ${quote(display(name))} of shape [${shape.join(', ')}] ${why}`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      throw malformed(file, `tensor ${quote(display(name))} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}] ${why}`);
  }
}
