/**
 * LLaMA, declared with kiln's building blocks. The dims are llama2.c's stories15M (a model small
 * enough to run anywhere); change them to declare any LLaMA 2-shaped model. Weight names follow
 * GGUF, and every matrix is stored [out, in].
 *
 *   kiln compile examples/llama.ts
 */
import { model, nn, linear, gather } from 'kiln';

const config = {
  vocabSize: 32000,
  dim: 288,
  nLayers: 6,
  nHeads: 6,
  nKvHeads: 6, // = nHeads: multi-head attention
  hiddenDim: 768,
  ropeBase: 10000,
  normEps: 1e-5,
};
const headDim = config.dim / config.nHeads;

export default model('llama', (m) => {
  const seq = m.dim('seq'); // tokens in this pass: bound at run time
  const vocab = m.dim('vocab', config.vocabSize);
  const dim = m.dim('dim', config.dim);
  const hidden = m.dim('hidden', config.hiddenDim);

  const tokens = m.input('tokens', 'i32', [seq]); // [seq]
  const embed = m.scope('embed', () => m.param('token_embd.weight', [vocab, dim])); // [vocab, dim]
  let x = m.scope('embed', () => gather(embed, tokens)); // [seq, dim]

  for (let l = 0; l < config.nLayers; l++) {
    m.scope(`layers.${l}`, () => {
      // attention: x + attn(rmsnorm(x))
      x = nn.residual(x, (x) => {
        const h = nn.rmsNorm(x, `blk.${l}.attn_norm.weight`, config.normEps, 'attn_norm'); // [seq, dim]
        const weights = {
          q: `blk.${l}.attn_q.weight`, // [heads·headDim, dim]
          k: `blk.${l}.attn_k.weight`, // [kvHeads·headDim, dim]
          v: `blk.${l}.attn_v.weight`, // [kvHeads·headDim, dim]
          o: `blk.${l}.attn_output.weight`, // [dim, heads·headDim]
        };
        const rope = { base: config.ropeBase, layout: 'interleaved' } as const;
        return nn.attention(h, weights, { nHeads: config.nHeads, nKvHeads: config.nKvHeads, headDim, rope }); // [seq, dim]
      }); // [seq, dim]

      // feed-forward: x + down(silu(gate(h)) ⊙ up(h)), h = rmsnorm(x)
      x = nn.residual(x, (x) => {
        const h = nn.rmsNorm(x, `blk.${l}.ffn_norm.weight`, config.normEps, 'ffn_norm'); // [seq, dim]
        const weights = {
          gate: `blk.${l}.ffn_gate.weight`, // [hidden, dim]
          up: `blk.${l}.ffn_up.weight`, // [hidden, dim]
          down: `blk.${l}.ffn_down.weight`, // [dim, hidden]
        };
        return nn.feedForward(h, weights, hidden, 'swiglu'); // [seq, dim]
      }); // [seq, dim]
    });
  }

  const logits = m.scope('head', () => {
    const h = nn.rmsNorm(x, 'output_norm.weight', config.normEps); // [seq, dim]
    return linear(h, embed); // [seq, vocab]: the classifier shares the embedding (as in llama2.c)
  });
  m.output('logits', logits); // [seq, vocab]
});
