import { describe, expect, it } from 'vitest';
import { sym } from '../graph/dim.js';
import { GraphBuilder } from '../graph/builder.js';
import { graphFlops } from '../src/analysis/flops.js';
import { defaultContext, modelInfo } from '../src/analysis/info.js';
import { kvCacheBytesPerToken, llamaDecodeFlops, llamaMatmulParams, llamaMeta, llamaParamCount } from '../src/analysis/llama.js';
import { paramStats } from '../src/analysis/params.js';
import { graphSummary } from '../src/analysis/summary.js';
import { contextEnv, graphSymbols } from '../src/analysis/symbols.js';
import { commas, humanBytes, humanFlops } from '../src/cli/format.js';
import { presetModel } from '../src/dsl/presets.js';

const tiny = presetModel('tiny').build();
const llama2 = presetModel('llama2-7b').build();
const llama3 = presetModel('llama3-8b').build();
const cfg = (g: typeof tiny) => {
  const c = llamaMeta(g);
  if (!c) throw new Error(`${g.name} has no llama meta`);
  return c;
};

describe('LLaMA arithmetic from the config, against hand-computed numbers', () => {
  // tiny: vocab 64, dim 32, 2 layers, 4 heads, 2 kv heads, hidden 48, maxSeqLen 32 → headDim 8, kv width 16.
  it('tiny', () => {
    const c = cfg(tiny);
    // per layer: q, o 2·32·32 = 2048; k, v 2·16·32 = 1024; gate, up, down 3·48·32 = 4608 → 7680
    expect(llamaMatmulParams(c)).toBe(2 * 7680 + 64 * 32); // 17,408 with the head
    // + embedding 2048 + norms (2 per layer + final) 5·32 = 160
    expect(llamaParamCount(c)).toBe(17408 + 2048 + 160); // 19,616
    expect(llamaDecodeFlops(c, 32)).toEqual({ weights: 34816, attention: 2 * 2 * 2 * 32 * 4 * 8, total: 34816 + 8192 });
    expect(kvCacheBytesPerToken(c)).toBe(2 * 2 * 2 * 8 * 4); // 256
  });

  it('llama2-7b', () => {
    const c = cfg(llama2);
    expect(llamaParamCount(c)).toBe(6_738_415_616);
    // 32 · (4·4096² + 3·4096·11008) + 32000·4096
    expect(llamaMatmulParams(c)).toBe(6_607_077_376);
    const d = llamaDecodeFlops(c, 4096);
    expect(d.weights).toBe(13_214_154_752);
    expect(d.attention).toBe(2 * 2 * 32 * 4096 * 32 * 128); // 2,147,483,648
    expect(d.total).toBe(15_361_638_400);
    expect(kvCacheBytesPerToken(c)).toBe(1_048_576); // 2·32·32·128·4
  });

  it('llama3-8b (GQA: 8 kv heads)', () => {
    const c = cfg(llama3);
    expect(llamaParamCount(c)).toBe(8_030_261_248);
    expect(kvCacheBytesPerToken(c)).toBe(2 * 32 * 8 * 128 * 4); // 262,144
  });

  it('a tied head and a plain (ungated) FFN change the counts', () => {
    const c = { ...cfg(tiny), tiedEmbeddings: true, activation: 'gelu' };
    expect(llamaMatmulParams(c)).toBe(2 * (2048 + 1024 + 2 * 48 * 32) + 64 * 32);
    expect(llamaParamCount(c)).toBe(llamaMatmulParams(c) + 160); // embedding doubles as the head
    expect(llamaParamCount({ ...c, norm: 'layer' })).toBe(llamaMatmulParams(c) + 320);
  });
});

describe('counts from the graph', () => {
  it('params of the built graphs match the config formula', () => {
    for (const g of [tiny, llama2, llama3]) expect(paramStats(g).count).toBe(llamaParamCount(cfg(g)));
    expect(paramStats(llama3)).toMatchObject({ count: 8_030_261_248, bytes: 4 * 8_030_261_248, symbolic: [] });
  });

  it("tiny's matmul FLOPs: 2 per weight per token plus full S×S attention", () => {
    const c = cfg(tiny);
    for (const S of [1, 5, 32]) {
      const f = graphFlops(tiny, { seq: S });
      expect(f.byOp.matmul).toBe(2 * S * llamaMatmulParams(c) + 2 * 2 * c.nLayers * S * S * c.nHeads * 8);
    }
  });

  it('counts each op kind by its rule', () => {
    const b = new GraphBuilder('ops');
    const S = sym('seq');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [S, 3, 4] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [4] });
    const e = b.add('exp', [x]); // 12·S
    const s = b.add('add', [e, x]); // 12·S
    const r = b.add('sum', [s], { axis: -1 }); // 12·S (per input element)
    const n = b.add('rmsnorm', [x, w], { eps: 1e-5 }); // 4·12·S
    const p = b.add('rope', [n], { base: 10000, layout: 'interleaved', offset: 0 }); // 3·12·S
    const t = b.add('transpose', [p], { perm: [1, 0, 2] }); // 0
    const m = b.add('matmul', [t, b.add('transpose', [t], { perm: [0, 2, 1] })], { transB: false }); // [3, S, S]: 2·3·S·S·4
    const k = b.add('causal_mask', [m], { offset: 0 }); // 3·S·S
    b.output('o', b.add('softmax', [k], { axis: -1 })); // 5·3·S·S
    b.output('r', r);
    const g = b.build();
    const S0 = 7;
    const f = graphFlops(g, { seq: S0 });
    expect(f.byOp).toEqual({
      exp: 12 * S0,
      add: 12 * S0,
      sum: 12 * S0,
      rmsnorm: 48 * S0,
      rope: 36 * S0,
      matmul: 24 * S0 * S0,
      causal_mask: 3 * S0 * S0,
      softmax: 15 * S0 * S0,
    });
    expect(f.total).toBe((12 + 12 + 12 + 48 + 36) * S0 + (24 + 3 + 15) * S0 * S0);
  });
});

describe('modelInfo', () => {
  it('measures a LLaMA at its maxSeqLen by default', () => {
    expect(defaultContext(tiny)).toBe(32);
    const m = modelInfo(tiny);
    expect(m.context).toBe(32);
    expect(m.graph.env).toEqual({ seq: 32 });
    expect(m.graph.flopsPerToken).toBe(m.graph.flops.total / 32);
    expect(m.llama?.kvBytesPerToken).toBe(256);
    expect(m.llama?.kvBytesFullContext).toBe(256 * 32);
    expect(m.llama?.decodeFlopsPerToken.total).toBe(43008);
  });

  it('uses the given context', () => {
    const m = modelInfo(llama2, 1000);
    expect(m.llama?.decodeFlopsPerToken.total).toBe(13_214_154_752 + 2 * 2 * 32 * 1000 * 32 * 128);
    expect(m.llama?.kvBytesFullContext).toBe(1_048_576 * 4096);
  });

  it('tells only what the graph tells for a generic graph', () => {
    const b = new GraphBuilder('mlp');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 8] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [8, 16] });
    b.output('y', b.add('matmul', [x, w], { transB: false }));
    const g = b.build();
    const m = modelInfo(g);
    expect(m.context).toBe(2048);
    expect(m.llama).toBeUndefined();
    expect(m.params).toMatchObject({ tensors: 1, count: 128, bytes: 512 });
    expect(m.graph.flopsPerToken).toBe(2 * 8 * 16);
    expect(m.step).toBeUndefined();
  });

  it('a model without a LLaMA config gets its decode figures from its step graph, and they agree with the config arithmetic', () => {
    const { llama: _, ...meta } = tiny.meta;
    const m = modelInfo({ ...tiny, meta }, 32);
    expect(m.llama).toBeUndefined();
    // the same KV cache and the same matmul FLOPs as the LLaMA formulas (the rest is norms, RoPE, softmax)
    expect(m.step?.kvBytesPerToken).toBe(256);
    expect(m.step?.kvBytesFullContext).toBe(256 * 32);
    expect(m.step?.decodeFlops.byOp['matmul']).toBe(43008);
    expect(m.step!.decodeFlops.total).toBeGreaterThan(43008);
  });

  it('a meta.llama that describes another model than the graph (an edited JSON graph) gives way to the graph', () => {
    const edited = { ...tiny, meta: { ...tiny.meta, llama: { ...(tiny.meta['llama'] as object), nLayers: 200 } } };
    const m = modelInfo(edited, 32);
    expect(m.llama).toBeUndefined();
    expect(m.metaDisagrees).toEqual({ metaKvBytesPerToken: 200 * 128, graphKvBytesPerToken: 256 });
    expect(m.step?.kvBytesPerToken).toBe(256);
    expect(modelInfo(tiny, 32).metaDisagrees).toBeUndefined();
  });
});

describe('symbols', () => {
  it('binds a full graph at seq = C and a step graph as one token after C − 1', () => {
    expect(contextEnv(['seq'], 100)).toEqual({ env: { seq: 100 }, tokens: 100 });
    expect(contextEnv(['pos', 'seq'], 100)).toEqual({ env: { pos: 99, seq: 1 }, tokens: 1 });
    expect(contextEnv([], 100)).toEqual({ env: {}, tokens: 1 });
    expect(graphSymbols(tiny)).toEqual(['seq']);
  });
});

describe('graphSummary', () => {
  it('lists ops, sources and outputs of tiny', () => {
    const s = graphSummary(tiny);
    expect(s.nodes).toBe(tiny.nodes.length);
    expect(s.ops.reduce((n, [, k]) => n + k, 0)).toBe(tiny.nodes.length);
    expect(s.ops.find(([op]) => op === 'matmul')?.[1]).toBe(2 * (4 + 2 + 3) + 1);
    expect(s.inputs).toEqual([{ name: 'tokens', type: 'i32[seq]' }]);
    expect(s.outputs).toEqual([{ name: 'logits', type: 'f32[seq, 64]' }]);
    expect(s.symbols).toEqual(['seq']);
  });
});

describe('formatting', () => {
  it('separates thousands and names sizes', () => {
    expect([0, 999, 1000, 8_030_261_248, -1234].map(commas)).toEqual(['0', '999', '1,000', '8,030,261,248', '-1,234']);
    expect(humanBytes(512)).toBe('512 bytes');
    expect(humanBytes(1_073_741_824)).toBe('1.00 GiB');
    expect(humanFlops(15_361_638_400)).toBe('15.36 GFLOP');
  });
});
