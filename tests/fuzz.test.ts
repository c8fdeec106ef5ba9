import { describe, expect, it } from 'vitest';
import type { Backend } from '../backends/backend.js';
import { jsBackend } from '../backends/js/index.js';
import type { Graph } from '../graph/graph.js';
import type { Pass } from '../passes/pass.js';
import { PIPELINE } from '../passes/pipeline.js';
import { GRAPH_PASSES, fuzz } from '../src/fuzz/fuzz.js';
import { formatFailure } from '../src/fuzz/report.js';

/** amax computed as sum: same types, a wrong value whenever the reduced axis is longer than 1. */
function amaxAsSum(g: Graph): Graph {
  return { ...g, nodes: g.nodes.map((n) => (n.op === 'amax' ? { ...n, op: 'sum' as const } : n)) };
}

describe('kiln fuzz', () => {
  it('the js backend and the pipeline agree with the interpreter (seeded, quick)', async () => {
    const r = await fuzz({ backends: [jsBackend], runs: 60, llamaRuns: 6, seed: 3 });
    expect(r.failure?.problem).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.runs).toEqual({ graph: 60, llama: 6 });
  }, 60_000);

  it('catches a broken kernel, shrinks the graph, and names the node', async () => {
    const broken: Backend = { ...jsBackend, name: 'broken', compile: (p, o) => jsBackend.compile(amaxAsSum(p), o) };
    const r = await fuzz({ backends: [broken], runs: 300, llamaRuns: 1, seed: 1, tolerance: { broken: 1e-3 } });
    expect(r.ok).toBe(false);
    const f = r.failure!;
    expect(f.kind).toBe('graph');
    expect(f.backend).toBe('broken');
    expect(f.firstNode?.node.op).toBe('amax');
    expect(f.firstPass).toBeUndefined(); // the passes are fine
    expect(f.graph.nodes.length).toBeLessThanOrEqual(4); // shrunk: an input, the amax, little else
    const text = formatFailure(f, 'kiln fuzz --seed 1');
    expect(text).toContain('replay: kiln fuzz --seed 1');
    expect(text).toMatch(/first node whose broken value differs[^\n]*\n {2}%\d+ = amax/);
  }, 120_000);

  it('catches a broken pass and names it', async () => {
    const bad: Pass = { name: 'amax-to-sum', reason: 'deliberately wrong', run: (g) => ({ graph: amaxAsSum(g), stats: {} }) };
    const passes = [...GRAPH_PASSES.slice(0, 2), bad, ...GRAPH_PASSES.slice(2)];
    const r = await fuzz({ backends: [jsBackend], runs: 300, llamaRuns: 1, seed: 1, graphPasses: passes });
    expect(r.ok).toBe(false);
    expect(r.failure?.firstPass).toMatchObject({ index: 3, pass: 'amax-to-sum' });
    expect(formatFailure(r.failure!, 'x')).toContain('#3 amax-to-sum: output');
  }, 120_000);

  it('checks LLaMA variants through sessions: a pass that breaks attention is caught there', async () => {
    // causal_mask with offset 1 lets every query see one key into the future
    const leak: Pass = {
      name: 'leak-future',
      reason: 'deliberately wrong',
      run: (g) => ({ graph: { ...g, nodes: g.nodes.map((n) => (n.op === 'causal_mask' ? { ...n, attrs: { ...n.attrs, offset: 1 } } : n)) }, stats: {} }),
    };
    const r = await fuzz({ backends: [jsBackend], runs: 1, llamaRuns: 10, seed: 2, llamaPasses: [leak, ...PIPELINE] });
    expect(r.ok).toBe(false);
    expect(r.failure?.kind).toBe('llama');
    expect(r.failure?.firstPass?.pass).toBe('leak-future');
    expect(r.failure?.config).toBeDefined();
  }, 120_000);
});
