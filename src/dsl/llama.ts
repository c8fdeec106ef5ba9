import { KilnError, type SourceLoc } from '../../graph/errors.js';
import { registerModelFile, userSite } from '../../graph/source.js';
import { type Activation, parseActivation } from './activation.js';
import type { Model } from './model.js';
import * as nn from './nn.js';
import * as op from './ops.js';
import type { RopeLayout } from './ops.js';
import { type ModelBuilder, type Tensor, model } from './tensor.js';

// Nodes built in this file point here (not at the caller of `llama()`), so presets dump readably.
registerModelFile(import.meta.url);

export type LlamaActivation = 'swiglu' | 'geglu' | 'gelu' | 'relu' | 'relu2';

/**
 * The LLaMA family. `swiglu`, `geglu` and a custom arrow are gated (`down(act(gate x) ⊙ up x)`,
 * the arrow taking SiLU's place); `gelu`, `relu` and `relu2` are plain (`down(act(up x))`).
 */
export interface LlamaConfig {
  name?: string;
  vocabSize: number;
  dim: number;
  nLayers: number;
  nHeads: number;
  /** Defaults to nHeads (MHA); fewer is GQA, 1 is MQA. */
  nKvHeads?: number;
  hiddenDim: number;
  maxSeqLen: number;
  ropeBase?: number;
  ropeLayout?: RopeLayout;
  normEps?: number;
  norm?: 'rms' | 'layer';
  activation?: LlamaActivation | ((x: number) => number);
  /** The output head reuses token_embd.weight. */
  tiedEmbeddings?: boolean;
}

/** Every field filled in; a custom activation is kept as its source text (plain JSON). */
export interface NormalizedLlamaConfig {
  readonly name: string;
  readonly vocabSize: number;
  readonly dim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly hiddenDim: number;
  readonly maxSeqLen: number;
  readonly ropeBase: number;
  readonly ropeLayout: RopeLayout;
  readonly normEps: number;
  readonly norm: 'rms' | 'layer';
  readonly activation: LlamaActivation | { readonly custom: string };
  readonly tiedEmbeddings: boolean;
}

const KEYS = ['name', 'vocabSize', 'dim', 'nLayers', 'nHeads', 'nKvHeads', 'hiddenDim', 'maxSeqLen', 'ropeBase', 'ropeLayout', 'normEps', 'norm', 'activation', 'tiedEmbeddings'];
const ACTIVATIONS = nn.NAMED_ACTIVATIONS;

/** Fill defaults and check the config; mistakes are K1010 errors at `site` (the user's call). */
export function normalizeLlamaConfig(c: LlamaConfig, site: SourceLoc | undefined = userSite()): NormalizedLlamaConfig {
  const bad = (msg: string): never => {
    throw new KilnError('K1010', `llama config: ${msg}`, site);
  };
  if (typeof c !== 'object' || c === null) bad('expected an object');
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) bad(`unknown field '${k}' (known: ${KEYS.join(', ')})`);
  const nKvHeads = c.nKvHeads ?? c.nHeads;
  const ints = { vocabSize: c.vocabSize, dim: c.dim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads, hiddenDim: c.hiddenDim, maxSeqLen: c.maxSeqLen };
  for (const [k, v] of Object.entries(ints))
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) bad(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
  if (c.nHeads % nKvHeads !== 0) bad(`nHeads (${c.nHeads}) must be divisible by nKvHeads (${nKvHeads})`);
  if (c.dim % c.nHeads !== 0) bad(`dim (${c.dim}) must be divisible by nHeads (${c.nHeads})`);
  const headDim = c.dim / c.nHeads;
  if (headDim % 2 !== 0) bad(`head dim (dim / nHeads = ${c.dim} / ${c.nHeads} = ${headDim}) must be even for RoPE`);
  const ropeBase = c.ropeBase ?? 10000;
  if (typeof ropeBase !== 'number' || !(ropeBase > 1) || !Number.isFinite(ropeBase)) bad(`ropeBase must be a finite number above 1, got ${JSON.stringify(ropeBase)}`);
  const normEps = c.normEps ?? 1e-5;
  if (typeof normEps !== 'number' || !(normEps > 0) || !Number.isFinite(normEps)) bad(`normEps must be a positive number, got ${JSON.stringify(normEps)}`);
  const ropeLayout = c.ropeLayout ?? 'interleaved';
  if (ropeLayout !== 'interleaved' && ropeLayout !== 'half') bad(`ropeLayout must be 'interleaved' or 'half', got ${JSON.stringify(ropeLayout)}`);
  const norm = c.norm ?? 'rms';
  if (norm !== 'rms' && norm !== 'layer') bad(`norm must be 'rms' or 'layer', got ${JSON.stringify(norm)}`);
  const a = c.activation ?? 'swiglu';
  if (typeof a !== 'function' && !ACTIVATIONS.includes(a)) bad(`activation must be one of ${ACTIVATIONS.join(', ')} or an arrow x => …, got ${JSON.stringify(a)}`);
  if (c.name !== undefined && (typeof c.name !== 'string' || c.name === '')) bad(`name must be a non-empty string, got ${JSON.stringify(c.name)}`);
  if (c.tiedEmbeddings !== undefined && typeof c.tiedEmbeddings !== 'boolean') bad(`tiedEmbeddings must be a boolean, got ${JSON.stringify(c.tiedEmbeddings)}`);
  return {
    name: c.name ?? 'llama',
    ...ints,
    headDim,
    ropeBase,
    ropeLayout,
    normEps,
    norm,
    activation: typeof a === 'function' ? { custom: a.toString() } : a,
    tiedEmbeddings: c.tiedEmbeddings ?? false,
  };
}

/** A LLaMA-family model; the config is checked now, the graph built when asked. */
export function llama(config: LlamaConfig): Model {
  const site = userSite();
  const c = normalizeLlamaConfig(config, site);
  const act = typeof config.activation === 'function' ? parseActivation(config.activation, site) : undefined;
  return model(c.name, (m) => buildLlama(m, c, act));
}

function buildLlama(m: ModelBuilder, c: NormalizedLlamaConfig, custom: Activation | undefined): void {
  m.meta('llama', c);
  const S = m.dim('seq');
  const V = m.dim('vocab', c.vocabSize);
  const D = m.dim('dim', c.dim);
  const F = m.dim('hidden', c.hiddenDim);
  const norm = <T extends Tensor>(x: T, weight: string, scope: string): T =>
    (c.norm === 'rms' ? nn.rmsNorm(x, `${weight}.weight`, c.normEps, scope) : nn.layerNorm(x, `${weight}.weight`, `${weight}.bias`, c.normEps, scope)) as T;
  const activation = custom ?? (c.activation as nn.FfnActivation);
  const attnOpts: nn.AttentionOptions = {
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    headDim: c.headDim,
    rope: { base: c.ropeBase, layout: c.ropeLayout },
  };

  const tokens = m.input('tokens', 'i32', [S]); // [seq]
  const table = m.scope('embed', () => m.param('token_embd.weight', [V, D])); // [vocab, dim]
  let x = m.scope('embed', () => op.gather(table, tokens)); // [seq, dim]
  for (let l = 0; l < c.nLayers; l++) {
    const blk = `blk.${l}`;
    m.scope(`layers.${l}`, () => {
      x = nn.residual(x, (x) => {
        const h = norm(x, `${blk}.attn_norm`, 'attn_norm'); // [seq, dim]
        const w = { q: `${blk}.attn_q.weight`, k: `${blk}.attn_k.weight`, v: `${blk}.attn_v.weight`, o: `${blk}.attn_output.weight` };
        return nn.attention(h, w, attnOpts); // [seq, dim]
      });
      x = nn.residual(x, (x) => {
        const h = norm(x, `${blk}.ffn_norm`, 'ffn_norm'); // [seq, dim]
        const gate = nn.isGated(activation) ? `${blk}.ffn_gate.weight` : undefined;
        return nn.feedForward(h, { gate, up: `${blk}.ffn_up.weight`, down: `${blk}.ffn_down.weight` }, F, activation); // [seq, dim]
      });
    });
  }
  const logits = m.scope('head', () => {
    const h = norm(x, 'output_norm', 'norm'); // [seq, dim]
    return c.tiedEmbeddings ? op.linear(h, table) : nn.linear(h, 'output.weight', V, 'output'); // [seq, vocab]
  });
  m.output('logits', logits);
}
