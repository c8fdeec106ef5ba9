/**
 * Not every transformer is a LLaMA: a GPT-2-style decoder with learned positional embeddings,
 * LayerNorm (with bias) and a plain GELU feed-forward, declared with the same blocks.
 *
 *   kiln compile examples/gpt-layernorm.ts
 */
import { model, nn, add, gather, iota, linear } from 'kiln';

const config = { vocabSize: 1024, dim: 128, nLayers: 3, nHeads: 4, hiddenDim: 512, maxSeqLen: 256, eps: 1e-5 };
const headDim = config.dim / config.nHeads;

export default model('gpt-layernorm', (m) => {
  const seq = m.dim('seq');
  const vocab = m.dim('vocab', config.vocabSize);
  const ctx = m.dim('ctx', config.maxSeqLen);
  const dim = m.dim('dim', config.dim);
  const hidden = m.dim('hidden', config.hiddenDim);

  const tokens = m.input('tokens', 'i32', [seq]); // [seq]
  const wte = m.param('token_embd.weight', [vocab, dim]); // [vocab, dim]
  const wpe = m.param('position_embd.weight', [ctx, dim]); // [ctx, dim]
  const positions = iota(m, [seq]); // [seq]: 0, 1, …, seq − 1
  let x = add(gather(wte, tokens), gather(wpe, positions)); // [seq, dim]

  for (let l = 0; l < config.nLayers; l++) {
    m.scope(`layers.${l}`, () => {
      const h = nn.layerNorm(x, `blk.${l}.attn_norm.weight`, `blk.${l}.attn_norm.bias`, config.eps, 'attn_norm'); // [seq, dim]
      const attn = nn.attention(
        h,
        { q: `blk.${l}.attn_q.weight`, k: `blk.${l}.attn_k.weight`, v: `blk.${l}.attn_v.weight`, o: `blk.${l}.attn_output.weight` },
        { nHeads: config.nHeads, nKvHeads: config.nHeads, headDim, rope: false }, // positions are learned, no RoPE
      ); // [seq, dim]
      x = add(x, attn); // [seq, dim]
      const f = nn.layerNorm(x, `blk.${l}.ffn_norm.weight`, `blk.${l}.ffn_norm.bias`, config.eps, 'ffn_norm'); // [seq, dim]
      x = add(x, nn.feedForward(f, { up: `blk.${l}.ffn_up.weight`, down: `blk.${l}.ffn_down.weight` }, hidden, 'gelu')); // [seq, dim]
    });
  }

  const logits = m.scope('head', () => {
    const h = nn.layerNorm(x, 'output_norm.weight', 'output_norm.bias', config.eps); // [seq, dim]
    return linear(h, wte); // [seq, vocab]
  });
  m.output('logits', logits);
});
