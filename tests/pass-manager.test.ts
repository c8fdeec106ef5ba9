import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { InternalError, KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { validate } from '../graph/validate.js';
import { presetModel } from '../src/dsl/presets.js';
import { constantFold } from '../passes/constant-fold.js';
import { cse } from '../passes/cse.js';
import { dce } from '../passes/dce.js';
import { formatReport, runPipeline, selectPasses } from '../passes/manager.js';
import type { Pass } from '../passes/pass.js';
import { PIPELINE } from '../passes/pipeline.js';
import { countFused } from '../passes/rewrite.js';
import { arbTinyLlama, outputError, tinyLlamaCase } from './pass-laws.js';

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    if (e instanceof Error) return e;
  }
  throw new Error('expected an error');
}

const KNOWN = 'constant-fold, cse, dce, insert-kv-cache, fuse-rope-qk, fuse-swiglu, fuse-causal-softmax, fuse-elementwise, plan-memory';

describe('the pipeline', () => {
  it('lists the passes in the agreed order, each with a one-line reason', () => {
    expect(PIPELINE.map((p) => p.name).join(', ')).toBe(
      'constant-fold, cse, dce, insert-kv-cache, fuse-rope-qk, fuse-swiglu, fuse-causal-softmax, fuse-elementwise, dce, plan-memory',
    );
    for (const p of PIPELINE) expect(p.reason).toMatch(/^[^\n]{10,100}$/);
  });

  it('compiles the tiny preset: a step graph with the three kernel fusions per layer and a memory plan', () => {
    const g = presetModel('tiny').build();
    const { graph, reports } = runPipeline(g, PIPELINE);
    expect(countFused(graph, 'rope_qk')).toBe(2);
    expect(countFused(graph, 'swiglu')).toBe(2);
    expect(countFused(graph, 'causal_softmax')).toBe(2);
    expect(graph.meta['memoryPlan']).toBeDefined();
    expect(graph.meta['kvCache']).toBeDefined();
    expect(reports.map((r) => r.name)).toEqual(PIPELINE.map((p) => p.name));
  });
});

describe('runPipeline', () => {
  const g = presetModel('tiny').build();
  const cleanups = [constantFold, cse, dce];

  it('reports each pass with its time, node counts and stats', () => {
    const { graph, reports } = runPipeline(g, cleanups);
    expect(reports.map((r) => r.name)).toEqual(['constant-fold', 'cse', 'dce']);
    for (const r of reports) {
      expect(r.ms).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(r.ms)).toBe(true);
    }
    expect(reports[0]!.nodesBefore).toBe(g.nodes.length);
    reports.slice(1).forEach((r, k) => expect(r.nodesBefore).toBe(reports[k]!.nodesAfter));
    expect(reports.at(-1)!.nodesAfter).toBe(graph.nodes.length);
    // the two layers' scale constants merge
    expect(reports[1]!.stats).toEqual({ merged: 1 });
    expect(reports[2]!.nodesAfter).toBe(g.nodes.length - 1);
  });

  it('keeps the outputs of random tiny LLaMA variants through the clean-ups and fusions', () => {
    const passes = selectPasses(['constant-fold,cse,dce', 'fuse-rope-qk', 'fuse-swiglu', 'fuse-elementwise', 'dce']);
    fc.assert(
      fc.property(arbTinyLlama(), (t) => {
        const { graph, bindings } = tinyLlamaCase(t);
        const out = runPipeline(graph, passes).graph;
        expect(countFused(out, 'rope_qk')).toBe(t.config.nLayers);
        expect(outputError(graph, out, bindings)).toBeLessThanOrEqual(1e-12);
      }),
      { numRuns: 15 },
    );
  });

  it('dumps after every pass with dumpAfter: all, and after the named ones otherwise', () => {
    const all: string[] = [];
    runPipeline(g, cleanups, { dumpAfter: 'all', onDump: (i, name, dumped) => (validate(dumped), all.push(`${i}:${name}:${dumped.nodes.length}`)) });
    const { reports } = runPipeline(g, cleanups);
    expect(all).toEqual(reports.map((r, k) => `${k + 1}:${r.name}:${r.nodesAfter}`));
    const some: string[] = [];
    runPipeline(g, cleanups, { dumpAfter: ['cse'], onDump: (i, name) => some.push(`${i}:${name}`) });
    expect(some).toEqual(['2:cse']);
    const none: string[] = [];
    runPipeline(g, cleanups, { onDump: (i, name) => none.push(`${i}:${name}`) });
    expect(none).toEqual([]);
  });

  it('rejects a dump-after name that is not in the run', () => {
    const e = thrown(() => runPipeline(g, cleanups, { dumpAfter: ['fuse-swiglu'], onDump: () => {} }));
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).code).toBe('K1016');
    expect(e.message).toBe("--dump-after: 'fuse-swiglu' is not a pass of this pipeline; its passes are: constant-fold, cse, dce");
  });

  it('turns a pass that breaks the graph into an internal error naming the pass', () => {
    const broken: Pass = {
      name: 'break-outputs',
      reason: 'points an output at a value that does not exist',
      run: (x: Graph) => ({ graph: { ...x, outputs: [{ name: 'logits', value: 10_000 }] }, stats: {} }),
    };
    const e = thrown(() => runPipeline(g, [cse, broken]));
    expect(e).toBeInstanceOf(InternalError);
    expect(e.message).toBe("internal error: pass break-outputs produced an invalid graph: graph tiny: output 'logits' refers to undefined value %10000");
  });

  it('passes the options through to the passes', () => {
    let seen: unknown;
    const probe: Pass = { name: 'probe', reason: 'records its options', run: (x, opts) => ((seen = opts), { graph: x, stats: {} }) };
    runPipeline(g, [probe], { lastLogitsOnly: true, maxSeqLen: 16, dumpAfter: 'all', onDump: () => {} });
    expect(seen).toEqual({ lastLogitsOnly: true, maxSeqLen: 16 });
  });

  it('leaves an invalid input graph as the caller’s error (K1015), not an internal one', () => {
    const b = new GraphBuilder('bad');
    b.output('y', b.add('input', [], { name: 'x', dtype: 'f32', shape: [2] }));
    const bad = { ...b.build(), outputs: [{ name: 'y', value: 7 }] };
    const e = thrown(() => runPipeline(bad, [dce]));
    expect((e as KilnError).code).toBe('K1015');
  });
});

describe('selectPasses', () => {
  it('resolves names (also comma-separated) in the order given', () => {
    expect(selectPasses(['dce', 'cse,constant-fold', 'fuse-swiglu']).map((p) => p.name)).toEqual(['dce', 'cse', 'constant-fold', 'fuse-swiglu']);
  });

  it('rejects an unknown pass with K1016, listing the known ones', () => {
    const e = thrown(() => selectPasses(['cse', 'fuse-everything']));
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).code).toBe('K1016');
    expect(e.message).toBe(`unknown pass 'fuse-everything'; known passes: ${KNOWN}`);
  });
});

describe('formatReport', () => {
  it('prints an aligned table with a total line', () => {
    const text = formatReport([
      { name: 'constant-fold', ms: 0.3125, nodesBefore: 412, nodesAfter: 398, stats: { folded: 14 } },
      { name: 'fuse-swiglu', ms: 12.5, nodesBefore: 398, nodesAfter: 350, stats: { fused: 16 } },
      { name: 'dce', ms: 1, nodesBefore: 350, nodesAfter: 350, stats: { removed: 0 } },
    ]);
    expect(text).toBe(
      [
        'pass              ms  nodes      stats',
        'constant-fold   0.31  412 → 398  folded: 14',
        'fuse-swiglu    12.50  398 → 350  fused: 16',
        'dce             1.00  350 → 350  removed: 0',
        'total          13.81  412 → 350',
        '',
      ].join('\n'),
    );
  });
});
