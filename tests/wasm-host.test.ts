/**
 * The wasm backend's host from a manifest alone (backends/wasm/host.ts): what a page or another
 * program gets — the module's bytes and the manifest after a trip through JSON — must run exactly
 * as the backend's own executable does.
 */
import { describe, expect, it } from 'vitest';
import type { HostArray } from '../backends/backend.js';
import { randomBindings } from '../backends/conformance.js';
import { causalRows, causalZeros } from '../backends/wasm/causal-rows.js';
import { checkManifest, loadWasm } from '../backends/wasm/host.js';
import { createWasmBackend, isWasmExecutable } from '../backends/wasm/index.js';
import { GraphBuilder } from '../graph/builder.js';
import { dimToString } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { presetModel } from '../src/dsl/presets.js';

const backend = createWasmBackend({ threads: 1 });
const viaJson = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('wasm host from a manifest', () => {
  it('prefill then decode through loadWasm give the backend executable’s outputs, bit for bit', async () => {
    const full = presetModel('tiny').build();
    const step = runPipeline(full, PIPELINE).graph;
    const weights = randomBindings(full, 3, { seq: 1 }).param;
    const meta = step.meta['kvCache'] as { maxSeqLen: number; states: string[] };
    const tokens = [5, 9, 2, 7, 1, 4];
    const runAll = async (load: (specialize?: Record<string, number>) => Promise<{ setWeights(w: typeof weights): void; run: (a: never) => Record<string, HostArray> }>) => {
      const [prefill, decode] = [await load(), await load({ seq: 1 })];
      prefill.setWeights(weights);
      decode.setWeights(weights);
      const state: Record<string, HostArray> = Object.fromEntries(meta.states.map((s) => [s, new Float32Array(meta.maxSeqLen * 2 * 8)]));
      const logits: number[] = [...(prefill.run({ inputs: { tokens: Int32Array.from(tokens.slice(0, 4)) }, symbols: { pos: 0 }, state } as never)['logits'] as Float32Array)];
      for (let p = 4; p < tokens.length; p++) logits.push(...(decode.run({ inputs: { tokens: Int32Array.of(tokens[p]!) }, symbols: { pos: p }, state } as never)['logits'] as Float32Array));
      return logits;
    };
    const direct = await runAll((specialize) => backend.compile(step, specialize ? { specialize } : {}));
    const hosted = await runAll(async (specialize) => {
      const exe = await backend.compile(step, specialize ? { specialize } : {});
      if (!isWasmExecutable(exe)) throw new Error('no manifest');
      return loadWasm(checkManifest(viaJson(exe.manifest)), exe.binary);
    });
    expect(hosted).toEqual(direct);
  });

  it('consts that JSON has no numbers for (±Infinity, NaN, −0) survive the manifest', async () => {
    const b = new GraphBuilder('consts');
    const values = [-Infinity, Infinity, NaN, -0, 1.5];
    b.output('y', b.add('const', [], { value: values, dtype: 'f32', shape: [5] }));
    const exe = await backend.compile(b.build());
    if (!isWasmExecutable(exe)) throw new Error('no manifest');
    const host = await loadWasm(viaJson(exe.manifest), exe.binary);
    host.setWeights({});
    expect([...(host.run({ inputs: {}, symbols: {} })['y'] as Float32Array)]).toEqual(values);
  });

  it('a file that is not a manifest is a K1014 error', () => {
    const err = (() => {
      try {
        checkManifest({ format: 'something else' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('K1014');
  });
});

describe('scores a causal softmax reads in part (causal-rows.ts)', () => {
  const { graph } = runPipeline(presetModel('tiny').build(), PIPELINE, { lastLogitsOnly: true });
  const outputs = new Set(graph.outputs.map((o) => o.value));
  const ropeQks = graph.nodes.filter((n) => n.op === 'fused' && n.attrs['pattern'] === 'rope_qk');

  it('finds every layer’s rope_qk, with the softmax block’s rows (seq) and the mask’s offset (pos)', () => {
    const found = causalRows(graph.nodes, outputs);
    expect(ropeQks).toHaveLength(2);
    expect([...found.keys()].sort()).toEqual(ropeQks.map((n) => n.id).sort());
    for (const r of found.values()) expect([dimToString(r.rows), dimToString(r.offset)]).toEqual(['seq', 'pos']);
  });

  it('finds every layer’s probabilities · V matmul, whose a holds zeros after each row’s kept columns', () => {
    const found = causalZeros(graph.nodes);
    const pv = graph.nodes.filter((n) => n.op === 'matmul' && n.attrs['transB'] !== true && found.has(n.id));
    expect(pv).toHaveLength(2);
    expect(found.size).toBe(2);
    for (const r of found.values()) expect([dimToString(r.rows), dimToString(r.offset)]).toEqual(['seq', 'pos']);
  });

  it('not when the scores are read elsewhere too, or are an output', () => {
    const first = ropeQks[0]!;
    const extra = { ...first, id: 10_000, op: 'reshape' as const, inputs: [first.id], attrs: { shape: [...first.type.shape] } };
    expect(causalRows([...graph.nodes, extra], outputs).has(first.id)).toBe(false);
    expect(causalRows(graph.nodes, new Set([...outputs, first.id])).has(first.id)).toBe(false);
  });
});
