import { describe, expect, it } from 'vitest';
import { interpret } from '../graph/interpret.js';
import { type HostTensor, hostTensor, maxRelError } from '../graph/tensor.js';
import { type LlamaConfig, llama, normalizeLlamaConfig, type NormalizedLlamaConfig } from '../src/dsl/llama.js';
import { PRESETS } from '../src/dsl/presets.js';
import { normalSampler } from './seeded-random.js';

/**
 * The DSL's LLaMA run by the reference interpreter against a LLaMA forward written here from
 * scratch, llama2.c-style: loops over positions, heads and keys, in float64. Nothing is shared
 * with the DSL but the weight names.
 */

type Weights = Record<string, HostTensor>;

function randomWeights(c: LlamaConfig, seed: number): Weights {
  const g = llama(c).build();
  const randn = normalSampler(seed);
  const w: Weights = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const shape = n.type.shape as number[];
    const isNorm = /norm\.weight$/.test(String(n.attrs['name']));
    const size = shape.reduce((a, d) => a * d, 1);
    w[String(n.attrs['name'])] = hostTensor('f32', shape, Array.from({ length: size }, () => (isNorm ? 1 : 0) + 0.1 * randn()));
  }
  return w;
}

// --- the independent forward ------------------------------------------------------------------

function matvec(w: HostTensor, x: number[]): number[] {
  const [rows, cols] = w.shape as [number, number];
  const out = new Array<number>(rows).fill(0);
  for (let i = 0; i < rows; i++) {
    let s = 0;
    for (let j = 0; j < cols; j++) s += w.data[i * cols + j]! * x[j]!;
    out[i] = s;
  }
  return out;
}

function normalize(c: NormalizedLlamaConfig, W: Weights, x: number[], name: string): number[] {
  const w = W[`${name}.weight`]!.data;
  const n = x.length;
  if (c.norm === 'rms') {
    let ss = 0;
    for (const v of x) ss += v * v;
    const r = 1 / Math.sqrt(ss / n + c.normEps);
    return x.map((v, i) => v * r * w[i]!);
  }
  const b = W[`${name}.bias`]!.data;
  const mu = x.reduce((a, v) => a + v, 0) / n;
  const variance = x.reduce((a, v) => a + (v - mu) ** 2, 0) / n;
  const r = 1 / Math.sqrt(variance + c.normEps);
  return x.map((v, i) => (v - mu) * r * w[i]! + b[i]!);
}

function rotate(c: NormalizedLlamaConfig, vec: number[], head: number, pos: number): void {
  const hd = c.headDim;
  for (let i = 0; i < hd / 2; i++) {
    const angle = pos * Math.pow(c.ropeBase, (-2 * i) / hd);
    const [ia, ib] = c.ropeLayout === 'interleaved' ? [head * hd + 2 * i, head * hd + 2 * i + 1] : [head * hd + i, head * hd + i + hd / 2];
    const a = vec[ia]!;
    const b = vec[ib]!;
    vec[ia] = a * Math.cos(angle) - b * Math.sin(angle);
    vec[ib] = a * Math.sin(angle) + b * Math.cos(angle);
  }
}

const sigm = (v: number) => 1 / (1 + Math.exp(-v));
const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));

function referenceForward(config: LlamaConfig, W: Weights, tokens: number[]): number[][] {
  const c = normalizeLlamaConfig(config);
  const hd = c.headDim;
  const group = c.nHeads / c.nKvHeads;
  const emb = W['token_embd.weight']!;
  const S = tokens.length;
  const x: number[][] = tokens.map((t) => Array.from(emb.data.subarray(t * c.dim, (t + 1) * c.dim)));
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}`;
    const keys: number[][] = [];
    const values: number[][] = [];
    const queries: number[][] = [];
    for (let s = 0; s < S; s++) {
      const xb = normalize(c, W, x[s]!, `${p}.attn_norm`);
      const q = matvec(W[`${p}.attn_q.weight`]!, xb);
      const k = matvec(W[`${p}.attn_k.weight`]!, xb);
      for (let h = 0; h < c.nHeads; h++) rotate(c, q, h, s);
      for (let h = 0; h < c.nKvHeads; h++) rotate(c, k, h, s);
      queries.push(q);
      keys.push(k);
      values.push(matvec(W[`${p}.attn_v.weight`]!, xb));
    }
    for (let s = 0; s < S; s++) {
      const out = new Array<number>(c.nHeads * hd).fill(0);
      for (let h = 0; h < c.nHeads; h++) {
        const kv = Math.floor(h / group);
        const scores: number[] = [];
        for (let t = 0; t <= s; t++) {
          let dot = 0;
          for (let i = 0; i < hd; i++) dot += queries[s]![h * hd + i]! * keys[t]![kv * hd + i]!;
          scores.push(dot / Math.sqrt(hd));
        }
        const top = Math.max(...scores);
        const e = scores.map((v) => Math.exp(v - top));
        const z = e.reduce((a, v) => a + v, 0);
        for (let t = 0; t <= s; t++) for (let i = 0; i < hd; i++) out[h * hd + i]! += (e[t]! / z) * values[t]![kv * hd + i]!;
      }
      const o = matvec(W[`${p}.attn_output.weight`]!, out);
      x[s] = x[s]!.map((v, i) => v + o[i]!);
    }
    for (let s = 0; s < S; s++) {
      const xb = normalize(c, W, x[s]!, `${p}.ffn_norm`);
      const up = matvec(W[`${p}.ffn_up.weight`]!, xb);
      let hb: number[];
      const a = c.activation;
      if (a === 'swiglu' || a === 'geglu' || typeof a === 'object') {
        const gate = matvec(W[`${p}.ffn_gate.weight`]!, xb);
        const f = a === 'swiglu' ? (v: number) => v * sigm(v) : a === 'geglu' ? geluTanh : (config.activation as (v: number) => number);
        hb = gate.map((g, i) => f(g) * up[i]!);
      } else {
        const f = a === 'gelu' ? geluTanh : a === 'relu' ? (v: number) => Math.max(v, 0) : (v: number) => Math.max(v, 0) ** 2;
        hb = up.map(f);
      }
      const down = matvec(W[`${p}.ffn_down.weight`]!, hb);
      x[s] = x[s]!.map((v, i) => v + down[i]!);
    }
  }
  const head = c.tiedEmbeddings ? emb : W['output.weight']!;
  return x.map((row) => matvec(head, normalize(c, W, row, 'output_norm')));
}

// --- the comparison ----------------------------------------------------------------------------

const tiny = PRESETS['tiny']!;
const quickGelu = (v: number) => v * (1 / (1 + Math.exp(-1.702 * v)));
const variants: [string, LlamaConfig][] = [
  ['tiny (GQA 4/2, interleaved RoPE)', tiny],
  ['tiny GQA, half RoPE', { ...tiny, ropeLayout: 'half' }],
  ['tiny MQA, interleaved RoPE', { ...tiny, nKvHeads: 1 }],
  ['tiny MQA, half RoPE', { ...tiny, nKvHeads: 1, ropeLayout: 'half', ropeBase: 500000 }],
  ['tiny MHA, tied embeddings', { ...tiny, nKvHeads: 4, tiedEmbeddings: true }],
  ['tiny GeGLU', { ...tiny, activation: 'geglu' }],
  ['tiny squared ReLU', { ...tiny, activation: 'relu2' }],
  ['tiny GELU, LayerNorm', { ...tiny, activation: 'gelu', norm: 'layer', normEps: 1e-6 }],
  ['tiny custom activation', { ...tiny, activation: quickGelu }],
];

describe('LLaMA through the interpreter equals a straight-loop forward', () => {
  it.each(variants)('%s', (_, config) => {
    const tokens = [3, 17, 0, 63, 17, 42, 5];
    const W = randomWeights(config, 1234);
    const g = llama(config).build();
    const out = interpret(g, { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params: W });
    const want = referenceForward(config, W, tokens);
    const ref = hostTensor('f32', [tokens.length, config.vocabSize], want.flat());
    expect(out['logits']!.shape).toEqual([tokens.length, config.vocabSize]);
    expect(maxRelError(out['logits']!, ref, 1e-6)).toBeLessThan(1e-9);
  });

  it('tells the RoPE layouts apart (the test would notice a swapped layout)', () => {
    const tokens = [1, 2, 3, 4];
    const W = randomWeights(tiny, 7);
    const out = interpret(llama(tiny).build(), { inputs: { tokens: hostTensor('i32', [4], tokens) }, params: W });
    const half = hostTensor('f32', [4, tiny.vocabSize], referenceForward({ ...tiny, ropeLayout: 'half' }, W, tokens).flat());
    expect(maxRelError(out['logits']!, half, 1e-6)).toBeGreaterThan(1e-3);
  });
});
