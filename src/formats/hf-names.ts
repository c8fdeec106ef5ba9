/**
 * Hugging Face llama tensor names ↔ kiln's (GGUF's), and the RoPE row permutation between the
 * two q/k layouts. HF checkpoints store q and k rows for "rotate half" RoPE (pairs (j, j + hd/2));
 * GGUF and llama2.c store them for Meta's interleaved pairs (2j, 2j + 1). Per head,
 * HF row `s·hd/2 + j` = GGUF row `2j + s` (s ∈ {0, 1}, j < hd/2).
 */
const LAYER: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
  input_layernorm: 'attn_norm',
  post_attention_layernorm: 'ffn_norm',
};
const KILN_LAYER = Object.fromEntries(Object.entries(LAYER).map(([h, k]) => [k, h]));
const GLOBAL: Record<string, string> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};
const KILN_GLOBAL = Object.fromEntries(Object.entries(GLOBAL).map(([h, k]) => [k, h]));

/** The kiln name of an HF tensor, or undefined for tensors kiln does not use (rotary_emb.inv_freq). */
export function hfToKiln(name: string): string | undefined {
  if (Object.hasOwn(GLOBAL, name)) return GLOBAL[name];
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
  const k = m && Object.hasOwn(LAYER, m[2]!) ? LAYER[m[2]!] : undefined;
  return m && k ? `blk.${m[1]}.${k}.weight` : undefined;
}

export function kilnToHf(name: string): string | undefined {
  if (Object.hasOwn(KILN_GLOBAL, name)) return KILN_GLOBAL[name];
  const m = /^blk\.(\d+)\.(.+)\.weight$/.exec(name);
  const h = m && Object.hasOwn(KILN_LAYER, m[2]!) ? KILN_LAYER[m[2]!] : undefined;
  return m && h ? `model.layers.${m[1]}.${h}.weight` : undefined;
}

/** Heads of a q or k matrix (by kiln name), or undefined for tensors RoPE does not touch. */
export function ropeHeads(name: string, nHeads: number, nKvHeads: number): number | undefined {
  if (/^blk\.\d+\.attn_q\.weight$/.test(name)) return nHeads;
  if (/^blk\.\d+\.attn_k\.weight$/.test(name)) return nKvHeads;
  return undefined;
}

/**
 * Permute the rows of a [heads·hd, cols] matrix held as bytes (any dtype whose rows are whole:
 * f32, f16, bf16, and q8_0 since its blocks run along a row). `to` names the layout produced.
 */
export function permuteRopeRows(bytes: Uint8Array, rows: number, heads: number, to: 'half' | 'interleaved'): Uint8Array {
  const hd = rows / heads;
  const rowBytes = bytes.length / rows;
  const out = new Uint8Array(bytes.length);
  for (let h = 0; h < heads; h++)
    for (let s = 0; s < 2; s++)
      for (let j = 0; j < hd / 2; j++) {
        const half = h * hd + s * (hd / 2) + j;
        const inter = h * hd + 2 * j + s;
        const [dst, src] = to === 'half' ? [half, inter] : [inter, half];
        out.set(bytes.subarray(src * rowBytes, (src + 1) * rowBytes), dst * rowBytes);
      }
  return out;
}
