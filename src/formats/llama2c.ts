/**
 * llama2.c checkpoints, legacy version 0 (what `run.c` reads): a header of 7 int32 — dim,
 * hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
 * classifier is stored separately — then f32 tensors, each stacked over layers:
 *   token_embedding [V, D], rms_att [L, D], wq [L, D, D], wk [L, KV, D], wv [L, KV, D],
 *   wo [L, D, D], rms_ffn [L, D], w1 [L, F, D], w2 [L, D, F], w3 [L, F, D], rms_final [D],
 *   two unused RoPE tables [seq_len, head_size/2] each, then wcls [V, D] if unshared.
 * Meta's layout throughout: interleaved-pair RoPE, base 10000, RMSNorm eps 1e-5. w1/w3/w2 are
 * GGUF's ffn_gate/ffn_up/ffn_down. The file must be exactly as long as the header implies, so a
 * truncated file or a corrupted header is an error rather than a model built from shifted bytes.
 */
import type { LlamaConfig } from '../dsl/llama.js';
import type { Checkpoint, CheckpointTensor, LoadOptions } from './checkpoint.js';
import { checkConfig, finiteData, makeTensor } from './consistency.js';
import { Cursor, FileSource, malformed } from './file.js';
import { join, dirname } from 'node:path';
import { loadSideTokenizer } from './tokenizer-hook.js';

const AK42 = 0x616b3432; // "ak42": the magic of llama2.c's newer export versions

/**
 * Whether `head` starts a PyTorch checkpoint: torch.save's zip ("PK\x03\x04") or a bare pickle
 * (protocol 2 to 5). HF's pytorch_model.bin is one, and it is easy to mistake for llama2.c's .bin.
 */
export function isPytorch(head: Uint8Array): boolean {
  const zip = head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
  return zip || (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5);
}

export const PYTORCH_HINT = 'this is a PyTorch checkpoint (torch.save zip or pickle), which kiln cannot read; convert it to safetensors (transformers save_pretrained) or GGUF (llama.cpp convert_hf_to_gguf.py) first';

export async function readLlama2c(path: string, opts: LoadOptions = {}): Promise<Checkpoint> {
  const src = FileSource.open(path);
  let config: LlamaConfig;
  const tensors = new Map<string, CheckpointTensor>();
  try {
    const c = new Cursor(src);
    c.ctx = 'the 7-int32 llama2.c header';
    if (isPytorch(src.read(0, Math.min(4, src.size), 'the file header'))) throw malformed(path, `not a llama2.c checkpoint: ${PYTORCH_HINT}`);
    if (src.size >= 4 && c.u32() === AK42) throw malformed(path, 'llama2.c export versions 1 and 2 ("ak42" magic) are not supported; export with version 0 (legacy)');
    c.pos = 0;
    const [dim, hidden, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = Array.from({ length: 7 }, () => c.i32()) as [number, number, number, number, number, number, number];
    const shared = vocabRaw > 0;
    const V = Math.abs(vocabRaw);
    config = { vocabSize: V, dim, nLayers, nHeads, nKvHeads, hiddenDim: hidden, maxSeqLen: seqLen, ropeBase: 10000, ropeLayout: 'interleaved', normEps: 1e-5, tiedEmbeddings: shared };
    const n = checkConfig(path, config);
    const D = dim, F = hidden, L = nLayers, KV = nKvHeads * n.headDim;
    const layout: [string, number[], boolean][] = [
      ['token_embd.weight', [V, D], false],
      ['attn_norm.weight', [D], true],
      ['attn_q.weight', [D, D], true],
      ['attn_k.weight', [KV, D], true],
      ['attn_v.weight', [KV, D], true],
      ['attn_output.weight', [D, D], true],
      ['ffn_norm.weight', [D], true],
      ['ffn_gate.weight', [F, D], true],
      ['ffn_down.weight', [D, F], true],
      ['ffn_up.weight', [F, D], true],
      ['output_norm.weight', [D], false],
      ['(rope tables)', [2 * seqLen * (n.headDim / 2)], false],
      ...(shared ? [] : [['output.weight', [V, D], false] as [string, number[], boolean]]),
    ];
    const floats = layout.reduce((s, [, shape, stacked]) => s + shape.reduce((a, b) => a * b, 1) * (stacked ? L : 1), 0);
    const expected = 28 + 4 * floats;
    if (src.size !== expected)
      throw malformed(path, `llama2.c header (dim ${dim}, hidden ${F}, layers ${L}, heads ${nHeads}, kv heads ${nKvHeads}, vocab ${vocabRaw}, seq ${seqLen}) implies ${expected} bytes, but the file has ${src.size}${src.size < expected ? ' (truncated?)' : ''}`);
    let off = 28;
    for (const [name, shape, stacked] of layout) {
      const bytes = shape.reduce((a, b) => a * b, 1) * 4;
      if (name.startsWith('(')) {
        off += bytes;
        continue;
      }
      for (let l = 0; l < (stacked ? L : 1); l++, off += bytes) {
        const full = stacked ? `blk.${l}.${name}` : name;
        tensors.set(full, makeTensor(full, 'f32', shape, finiteData(path, full, 'f32', src.read(off, bytes, `tensor '${full}'`))));
      }
    }
  } finally {
    src.close();
  }
  const tokPath = opts.tokenizer ?? join(dirname(path), 'tokenizer.bin');
  const tokenizer = await loadSideTokenizer('tokenizerFromLlama2cBin', tokPath, [config.vocabSize], opts.tokenizer !== undefined);
  return { file: path, format: 'llama2c', config, tensors, ...(tokenizer ? { tokenizer } : {}), metadata: {} };
}
