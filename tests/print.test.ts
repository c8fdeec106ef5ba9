import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { dimAdd, sym } from '../graph/dim.js';
import { InternalError } from '../graph/errors.js';
import type { Graph, Node } from '../graph/graph.js';
import type { FusedBody } from '../graph/ops.js';
import { blockOf, dotString, planFold, printDot, printText, renderSvg } from '../graph/print/index.js';
import { runPipeline } from '../passes/manager.js';
import { PIPELINE } from '../passes/pipeline.js';
import { presetModel } from '../src/dsl/presets.js';
import { arbGraph } from './arbitrary.js';

const at = (line: number, col = 7) => ({ file: 'examples/tiny.ts', line, col });

/** rmsnorm → matmul (transB) → max with a −∞ const → softmax → last row. */
function tiny(): Graph {
  const b = new GraphBuilder('tiny');
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 8] }, at(3, 13));
  const nw = b.add('param', [], { name: 'norm.w', dtype: 'f32', shape: [8] }, at(4, 13));
  const n = b.within('norm', () => b.add('rmsnorm', [x, nw], { eps: 1e-5 }, at(5)));
  const y = b.within('proj', () => {
    const w = b.add('param', [], { name: 'proj.w', dtype: 'f32', shape: [4, 8] }, at(7, 13));
    return b.add('matmul', [n, w], { transB: true }, at(8, 13));
  });
  const c = b.add('const', [], { dtype: 'f32', shape: [1], value: [-Infinity] }, at(9, 11));
  const m = b.add('max', [y, c], {}, at(10, 11));
  const s = b.add('softmax', [m], { axis: -1 }, at(11, 11));
  const last = b.add('slice', [s], { axis: 0, start: dimAdd(sym('seq'), -1), end: sym('seq') }, undefined);
  b.output('probs', s);
  b.output('last', last);
  const g = b.build();
  // No position for the slice: the column stays empty.
  return { ...g, nodes: g.nodes.map((nd) => (nd.id === last ? { ...nd, loc: undefined } : nd)) };
}

interface StackOptions {
  readonly layers: number;
  /** This layer uses gelu where the others use silu. */
  readonly odd?: number;
  readonly family?: readonly string[];
}

/** `layers` residual blocks x + silu(rmsnorm(x) · wᵀ), weights declared inside each block. */
function stack(o: StackOptions): Graph {
  const b = new GraphBuilder('stack');
  let x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 8] }, at(1));
  const family = o.family ?? ['layers'];
  const inFamily = (i: number, fn: () => void) => {
    const go = (k: number): void => (k === family.length ? b.within(i, fn) : b.within(family[k]!, () => go(k + 1)));
    go(0);
  };
  for (let i = 0; i < o.layers; i++) {
    inFamily(i, () => {
      const p = family.join('.');
      const nw = b.add('param', [], { name: `${p}.${i}.norm`, dtype: 'f32', shape: [8] }, at(10));
      const h = b.within('norm', () => b.add('rmsnorm', [x, nw], { eps: 1e-5 }, at(11)));
      // `w1` holds a 1: only the block's own index, as a whole segment, is compared loosely.
      const w = b.add('param', [], { name: `${p}.${i}.w1`, dtype: 'f32', shape: [8, 8] }, at(12));
      const y = b.within('ffn', () => b.add('matmul', [h, w], { transB: true }, at(13)));
      const a = b.within('ffn', () => b.add(i === o.odd ? 'gelu' : 'silu', [y], {}, at(14)));
      x = b.add('add', [x, a], {}, at(15));
    });
  }
  b.output('y', x);
  return b.build();
}

describe('printText', () => {
  it('prints a header, one aligned line per node, then the outputs', () => {
    expect(printText(tiny())).toBe(
      [
        'graph tiny (symbols: seq)',
        '%0 = input "x"                                   f32[seq, 8]          examples/tiny.ts(3,13)',
        '%1 = param "norm.w"                              f32[8]               examples/tiny.ts(4,13)',
        '%2 = rmsnorm %0, %1 {eps=1e-5}                   f32[seq, 8]   norm   examples/tiny.ts(5,7)',
        '%3 = param "proj.w"                              f32[4, 8]     proj   examples/tiny.ts(7,13)',
        '%4 = matmul %2, %3 {transB}                      f32[seq, 4]   proj   examples/tiny.ts(8,13)',
        '%5 = const -inf                                  f32[1]               examples/tiny.ts(9,11)',
        '%6 = max %4, %5                                  f32[seq, 4]          examples/tiny.ts(10,11)',
        '%7 = softmax %6 {axis=-1}                        f32[seq, 4]          examples/tiny.ts(11,11)',
        '%8 = slice %7 {axis=0, start=seq - 1, end=seq}   f32[1, 4]',
        'output probs = %7                                f32[seq, 4]',
        'output last = %8                                 f32[1, 4]',
        '',
      ].join('\n'),
    );
  });

  it('folds layers identical to layers.0 into one line', () => {
    const g = stack({ layers: 3 });
    expect(printText(g, { fold: true })).toBe(
      [
        'graph stack (symbols: seq)',
        '%0 = input "x"                   f32[seq, 8]                   examples/tiny.ts(1,7)',
        '%1 = param "layers.0.norm"       f32[8]        layers.0        examples/tiny.ts(10,7)',
        '%2 = rmsnorm %0, %1 {eps=1e-5}   f32[seq, 8]   layers.0.norm   examples/tiny.ts(11,7)',
        '%3 = param "layers.0.w1"         f32[8, 8]     layers.0        examples/tiny.ts(12,7)',
        '%4 = matmul %2, %3 {transB}      f32[seq, 8]   layers.0.ffn    examples/tiny.ts(13,7)',
        '%5 = silu %4                     f32[seq, 8]   layers.0.ffn    examples/tiny.ts(14,7)',
        '%6 = add %0, %5                  f32[seq, 8]   layers.0        examples/tiny.ts(15,7)',
        '… layers.1–2: 2 more layers identical to layers.0 (6 nodes each)',
        'output y = %18                   f32[seq, 8]',
        '',
      ].join('\n'),
    );
    // Without fold every node is there.
    expect(printText(g).split('\n').filter((l) => l.startsWith('%'))).toHaveLength(19);
  });

  it('does not fold a layer that differs, and folds the ones around it separately', () => {
    const text = printText(stack({ layers: 4, odd: 2 }), { fold: true });
    const lines = text.split('\n');
    expect(lines.filter((l) => l.startsWith('…'))).toEqual([
      '… layers.1: 1 more layer identical to layers.0 (6 nodes)',
      '… layers.3: 1 more layer identical to layers.0 (6 nodes)',
    ]);
    expect(lines.filter((l) => l.includes('layers.2')).map((l) => l.split(/\s{3,}/)[0])).toEqual([
      '%13 = param "layers.2.norm"',
      '%14 = rmsnorm %12, %13 {eps=1e-5}',
      '%15 = param "layers.2.w1"',
      '%16 = matmul %14, %15 {transB}',
      '%17 = gelu %16',
      '%18 = add %12, %17',
    ]);
    expect(lines.indexOf('… layers.1: 1 more layer identical to layers.0 (6 nodes)')).toBeLessThan(lines.findIndex((l) => l.startsWith('%13 ')));
  });

  it('finds repeated blocks under any name, not only "layers"', () => {
    expect(blockOf('model.blocks.12.attn')).toEqual({ family: 'model.blocks', index: 12 });
    expect(blockOf('layers.0')).toEqual({ family: 'layers', index: 0 });
    expect(blockOf('head')).toBeUndefined();
    expect(blockOf('v2.01')).toBeUndefined();
    const text = printText(stack({ layers: 4, family: ['model', 'blocks'] }), { fold: true });
    expect(text).toContain('… model.blocks.1–3: 3 more blocks identical to model.blocks.0 (6 nodes each)');
  });

  it('does not fold a block that reads its outside values in another pattern', () => {
    // Block 0 adds two different outside values; block 1 adds one outside value to itself.
    const b = new GraphBuilder('pattern');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [4] }, at(1));
    const y = b.add('input', [], { name: 'y', dtype: 'f32', shape: [4] }, at(2));
    const h0 = b.within('layers', () => b.within(0, () => b.add('add', [x, y], {}, at(3))));
    b.within('layers', () => b.within(1, () => b.add('add', [h0, h0], {}, at(3))));
    expect(planFold(b.build()).runs).toEqual([]);
  });

  it('prints a fused op with its body under it', () => {
    const body = new GraphBuilder('body');
    const a = body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [sym('seq'), 8] }, at(1));
    const bb = body.add('input', [], { name: 'arg1', dtype: 'f32', shape: [sym('seq'), 8] }, at(1));
    body.output('out', body.add('mul', [body.add('silu', [a], {}, at(2)), bb], {}, at(3)));
    const b = new GraphBuilder('fusedy');
    const g1 = b.add('input', [], { name: 'gate', dtype: 'f32', shape: [sym('seq'), 8] }, at(5));
    const u = b.add('input', [], { name: 'up', dtype: 'f32', shape: [sym('seq'), 8] }, at(6));
    const f = b.within('ffn', () => b.add('fused', [g1, u], { pattern: 'swiglu', body: body.build() }, at(7)));
    b.output('h', f);
    expect(printText(b.build())).toBe(
      [
        'graph fusedy (symbols: seq)',
        '%0 = input "gate"                      f32[seq, 8]         examples/tiny.ts(5,7)',
        '%1 = input "up"                        f32[seq, 8]         examples/tiny.ts(6,7)',
        '%2 = fused %0, %1 {pattern="swiglu"}   f32[seq, 8]   ffn   examples/tiny.ts(7,7)',
        '    │ %0 = input "arg0"                f32[seq, 8]         examples/tiny.ts(1,7)',
        '    │ %1 = input "arg1"                f32[seq, 8]         examples/tiny.ts(1,7)',
        '    │ %2 = silu %0                     f32[seq, 8]         examples/tiny.ts(2,7)',
        '    │ %3 = mul %2, %1                  f32[seq, 8]         examples/tiny.ts(3,7)',
        '    │ return %3',
        'output h = %2                          f32[seq, 8]',
        '',
      ].join('\n'),
    );
    expect(printDot(b.build())).toContain('n2 [label="%2 fused {pattern=\\"swiglu\\", body=(4 nodes)}\\nf32[seq, 8]"];');
  });

  it('prints every random graph with one line per node and output, folded or not', () => {
    // A fused op's body adds its nodes and a `return` line.
    const rows = (n: Node): number => {
      const body = n.op === 'fused' ? (n.attrs['body'] as FusedBody) : undefined;
      return 1 + (body ? body.nodes.reduce((k, m) => k + rows(m), 0) + body.outputs.length : 0);
    };
    fc.assert(
      fc.property(arbGraph(), (g) => {
        const lines = printText(g).trimEnd().split('\n');
        expect(lines).toHaveLength(1 + g.nodes.reduce((k, n) => k + rows(n), 0) + g.outputs.length);
        const plan = planFold(g);
        const folded = printText(g, { fold: true }).trimEnd().split('\n');
        const shown = g.nodes.filter((n) => !plan.hidden.has(n.id));
        expect(folded).toHaveLength(1 + shown.reduce((k, n) => k + rows(n), 0) + plan.runs.length + g.outputs.length);
      }),
      { numRuns: 200 },
    );
  });
});

describe('printDot and renderSvg', () => {
  it('escapes quotes, backslashes and line breaks in DOT strings', () => {
    expect(dotString('a "b" \\c\nd')).toBe('"a \\"b\\" \\\\c\\nd"');
  });

  it('draws nodes with op and type, sources apart, scopes as nested clusters', () => {
    const dot = printDot(stack({ layers: 2 }));
    expect(dot).toMatch(/^digraph "stack" \{/);
    expect(dot).toContain('n4 [label="%4 matmul {transB}\\nf32[seq, 8]"];');
    expect(dot).toContain('n1 [label="%1 param \\"layers.0.norm\\"\\nf32[8]", shape=box, style="filled", fillcolor="#fde8c8"];');
    expect(dot).toContain('n0 [label="%0 input \\"x\\"\\nf32[seq, 8]", shape=invhouse');
    expect(dot).toContain('out0 [label="output y", shape=house');
    expect(dot).toContain('n2 -> n4 [label="0"];');
    // layers ⊃ layers.0 ⊃ layers.0.ffn
    const order = ['label="layers";', 'label="layers.0";', 'label="layers.0.ffn";'].map((l) => dot.indexOf(l));
    expect(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1]!))).toBe(true);
  });

  it('after plan-memory, lists where each planned value lives in the arena', () => {
    const { graph } = runPipeline(presetModel('tiny').build(), PIPELINE);
    const plan = graph.meta['memoryPlan'] as { arenaBytes: number; buffers: { value: number; offset: number; bytes: number; start: number; end: number }[] };
    const text = printText(graph);
    const commas = (x: number) => x.toLocaleString('en-US');
    expect(text).toContain(`memory plan: one arena of ${commas(plan.arenaBytes)} bytes for `);
    for (const b of plan.buffers) expect(text).toMatch(new RegExp(`^  %${b.value} +at ${commas(b.offset)} +${commas(b.bytes)} bytes +live ${b.start}–${b.end}$`, 'm'));
    expect(printText(presetModel('tiny').build())).not.toContain('memory plan');
  });

  it('quotes a scope with spaces or a line break, so that each node keeps one line', () => {
    const b = new GraphBuilder('s');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [2] });
    b.output('y', b.within('odd\nscope', () => b.add('exp', [x])));
    const text = printText(b.build());
    expect(text).toContain('"odd\\nscope"');
    expect(text.split('\n').filter((l) => l.includes('exp'))).toHaveLength(1);
  });

  it('ranks each param beside its user (an invisible edge from the data that user reads), so layers stack instead of standing side by side', async () => {
    const g = stack({ layers: 3 });
    const dot = printDot(g);
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    for (const p of g.nodes.filter((n) => n.op === 'param')) {
      const user = g.nodes.find((n) => n.inputs.includes(p.id))!;
      const data = user.inputs.find((v) => !['input', 'param', 'state', 'const'].includes(byId.get(v)!.op));
      // (a user that reads only sources, the first layer's norm of input x, needs none)
      if (data !== undefined) expect(dot).toContain(`n${data} -> n${p.id} [style=invis];`);
    }
    expect(dot.match(/\[style=invis\]/g)?.length).toBeGreaterThanOrEqual(2 * 3 - 1);
    // the picture: three layers one above the other are taller than wide
    const size = (await renderSvg(dot)).match(/<svg width="(\d+)pt" height="(\d+)pt"/)!;
    expect(Number(size[2])).toBeGreaterThan(2 * Number(size[1]));
  });

  it('with fold draws only the first block and a note for the rest', () => {
    const dot = printDot(stack({ layers: 3 }), { fold: true });
    expect(dot).toContain('fold0 [label="layers.1–2:\\n2 more layers identical to layers.0 (6 nodes each)", shape=note');
    expect(dot).not.toMatch(/^\s*n(7|8|9|1\d) \[/m);
    expect(dot).toContain('n6 -> fold0;');
    expect(dot).toContain('fold0 -> out0;');
  });

  it('renders to SVG with Graphviz in WebAssembly', async () => {
    const svg = await renderSvg(printDot(tiny()));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('%4 matmul {transB}');
    expect(svg).toContain('f32[seq, 4]');
    expect(svg).toContain('output probs');
  });

  it('renders the DOT of random graphs, folded or not, without a Graphviz error', async () => {
    await fc.assert(
      fc.asyncProperty(arbGraph(), fc.boolean(), async (g, fold) => {
        const svg = await renderSvg(printDot(g, { fold }));
        expect(svg.startsWith('<svg')).toBe(true);
        for (const n of g.nodes) if (!(fold && planFold(g).hidden.has(n.id))) expect(svg).toContain(`<title>n${n.id}</title>`);
      }),
      { numRuns: 40 },
    );
  });

  it('reports DOT that Graphviz cannot read as an internal error', async () => {
    await expect(renderSvg('digraph { a -> }')).rejects.toThrow(InternalError);
    await expect(renderSvg('digraph { a -> }')).rejects.toThrow(/graphviz could not render the graph: .*syntax error/);
  });
});
