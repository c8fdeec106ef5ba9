import { describe, expect, it } from 'vitest';
import type { Graph } from '../graph/graph.js';
import { typeToString } from '../graph/types.js';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { PRESETS, presetModel } from '../src/dsl/presets.js';
import * as badConfig from './fixtures/dsl/bad-config.js';
import { thrown } from './helpers.js';

function paramCount(g: Graph): number {
  return g.nodes.filter((n) => n.op === 'param').reduce((acc, n) => acc + (n.type.shape as number[]).reduce((a, d) => a * d, 1), 0);
}

describe('parameter counts equal the published ones', () => {
  it.each([
    ['llama2-7b', 6_738_415_616],
    ['llama2-13b', 13_015_864_320],
    ['llama3-8b', 8_030_261_248],
    ['tinyllama-1.1b', 1_100_048_384],
    // llama2.c's models: the classifier is the embedding
    ['stories15M', 15_191_712],
    ['stories110M', 109_529_856],
  ])('%s has %i', (name, count) => {
    expect(paramCount(presetModel(name).build())).toBe(count);
  });
});

describe('the graph', () => {
  const g = presetModel('tiny').build();

  it('takes tokens i32[seq] and gives logits f32[seq, vocab]', () => {
    const inputs = g.nodes.filter((n) => n.op === 'input');
    expect(inputs.map((n) => `${String(n.attrs['name'])}: ${typeToString(n.type)}`)).toEqual(['tokens: i32[seq]']);
    expect(g.outputs.map((o) => `${o.name}: ${typeToString(g.nodes[o.value]!.type)}`)).toEqual(['logits: f32[seq, 64]']);
  });

  it('names weights as GGUF does, matrices [out, in]', () => {
    const params = Object.fromEntries(g.nodes.filter((n) => n.op === 'param').map((n) => [String(n.attrs['name']), typeToString(n.type)]));
    const layer = (l: number) => ({
      [`blk.${l}.attn_norm.weight`]: 'f32[32]',
      [`blk.${l}.attn_q.weight`]: 'f32[32, 32]',
      [`blk.${l}.attn_k.weight`]: 'f32[16, 32]',
      [`blk.${l}.attn_v.weight`]: 'f32[16, 32]',
      [`blk.${l}.attn_output.weight`]: 'f32[32, 32]',
      [`blk.${l}.ffn_norm.weight`]: 'f32[32]',
      [`blk.${l}.ffn_up.weight`]: 'f32[48, 32]',
      [`blk.${l}.ffn_gate.weight`]: 'f32[48, 32]',
      [`blk.${l}.ffn_down.weight`]: 'f32[32, 48]',
    });
    expect(params).toEqual({
      'token_embd.weight': 'f32[64, 32]',
      ...layer(0),
      ...layer(1),
      'output_norm.weight': 'f32[32]',
      'output.weight': 'f32[64, 32]',
    });
  });

  it('builds in scopes that read like the model', () => {
    const scopes = new Set(g.nodes.map((n) => n.scope));
    for (const s of ['embed', 'layers.0.attn_norm', 'layers.0.attn.q', 'layers.0.attn.scores', 'layers.1.ffn.gate', 'layers.1.ffn.act', 'layers.1.ffn.down', 'head.norm', 'head.output'])
      expect(scopes).toContain(s);
  });

  it('points its nodes into the LLaMA definition', () => {
    expect(g.nodes.every((n) => n.loc?.file === 'src/dsl/llama.ts')).toBe(true);
  });

  it('records the normalised config', () => {
    expect(g.meta['llama']).toEqual({
      name: 'tiny', vocabSize: 64, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8, hiddenDim: 48, maxSeqLen: 32,
      ropeBase: 10000, ropeLayout: 'interleaved', normEps: 1e-5, norm: 'rms', activation: 'swiglu', tiedEmbeddings: false,
    });
    const custom = llama({ ...PRESETS['tiny']!, activation: (x) => x * 2 }).build();
    expect((custom.meta['llama'] as { activation: unknown }).activation).toEqual({ custom: '(x) => x * 2' });
    expect(JSON.parse(JSON.stringify(custom.meta))).toEqual(custom.meta);
  });

  it('ties the head to the embedding when asked, and drops the gate for plain activations', () => {
    const tied = llama({ ...PRESETS['tiny']!, tiedEmbeddings: true, activation: 'relu2' }).build();
    const names = tied.nodes.filter((n) => n.op === 'param').map((n) => String(n.attrs['name']));
    expect(names).not.toContain('output.weight');
    expect(names.filter((n) => n.includes('ffn_gate'))).toEqual([]);
    expect(paramCount(tied)).toBe(paramCount(presetModel('tiny').build()) - 64 * 32 - 2 * 48 * 32);
  });

  it('gives LayerNorm a bias', () => {
    const ln = llama({ ...PRESETS['tiny']!, norm: 'layer' }).build();
    expect(ln.nodes.filter((n) => n.op === 'param' && String(n.attrs['name']).endsWith('norm.bias'))).toHaveLength(5);
    expect(ln.nodes.filter((n) => n.op === 'rmsnorm')).toHaveLength(0);
  });
});

describe('config validation', () => {
  const base: LlamaConfig = { vocabSize: 32000, dim: 4096, nLayers: 32, nHeads: 32, hiddenDim: 11008, maxSeqLen: 4096 };
  it.each<[Partial<LlamaConfig> & Record<string, unknown>, string]>([
    [{ nKvHeads: 5 }, 'llama config: nHeads (32) must be divisible by nKvHeads (5)'],
    [{ nHeads: 30 }, 'llama config: dim (4096) must be divisible by nHeads (30)'],
    [{ dim: 96 }, 'llama config: head dim (dim / nHeads = 96 / 32 = 3) must be even for RoPE'],
    [{ dim: 0 }, 'llama config: dim must be a positive integer, got 0'],
    [{ nLayers: 2.5 }, 'llama config: nLayers must be a positive integer, got 2.5'],
    [{ vocabSize: -1 }, 'llama config: vocabSize must be a positive integer, got -1'],
    [{ nKvHeads: 0 }, 'llama config: nKvHeads must be a positive integer, got 0'],
    [{ ropeBase: 0 }, 'llama config: ropeBase must be a finite number above 1, got 0'],
    [{ normEps: -1e-5 }, 'llama config: normEps must be a positive number, got -0.00001'],
    [{ ropeLayout: 'neox' as 'half' }, `llama config: ropeLayout must be 'interleaved' or 'half', got "neox"`],
    [{ norm: 'batch' as 'rms' }, `llama config: norm must be 'rms' or 'layer', got "batch"`],
    [{ activation: 'swish' as 'swiglu' }, 'llama config: activation must be one of swiglu, geglu, gelu, relu, relu2 or an arrow x => …, got "swish"'],
    [{ nHead: 8 }, `llama config: unknown field 'nHead' (known: name, vocabSize, dim, nLayers, nHeads, nKvHeads, hiddenDim, maxSeqLen, ropeBase, ropeLayout, normEps, norm, activation, tiedEmbeddings)`],
  ])('%o', (patch, message) => {
    const e = thrown(() => llama({ ...base, ...patch }));
    expect(e.code).toBe('K1010');
    expect(e.message).toBe(message);
    expect(e.loc?.file).toBe('tests/llama.test.ts');
  });

  it('locates the error at the call in the user file', () => {
    expect(thrown(badConfig.kvHeads).headline).toBe(
      'tests/fixtures/dsl/bad-config.ts(6,30): error K1010: llama config: nHeads (32) must be divisible by nKvHeads (5)',
    );
    expect(thrown(badConfig.oddHeadDim).headline).toBe(
      'tests/fixtures/dsl/bad-config.ts(8,3): error K1010: llama config: head dim (dim / nHeads = 96 / 32 = 3) must be even for RoPE',
    );
  });
});
