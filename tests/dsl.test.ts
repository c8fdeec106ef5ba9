import { describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { typeToString } from '../graph/types.js';
import { add, exp, linear, matmul, max, model, mul, nn, reshape, sigmoid, transpose, type ModelBuilder, type Tensor } from '../src/index.js';
import shapeMistake from './fixtures/dsl/shape-mistake.js';

function build(fn: (m: ModelBuilder) => void): Graph {
  return model('t', fn).build();
}

const types = (g: Graph) => g.nodes.map((n) => `${n.op} ${typeToString(n.type)}`);

describe('typed tensors', () => {
  it('declares symbolic and static dims, inputs and params', () => {
    const g = build((m) => {
      const seq = m.dim('seq');
      const dim = m.dim('dim', 8);
      expect(seq).toEqual({ name: 'seq', dim: { terms: { seq: 1 }, offset: 0 } });
      expect(dim).toEqual({ name: 'dim', dim: 8 });
      const x = m.input('x', 'f32', [seq, dim]);
      const w = m.param('w', [16, dim]);
      m.output('y', linear(x, w));
    });
    expect(types(g)).toEqual(['input f32[seq, 8]', 'param f32[16, 8]', 'matmul f32[seq, 16]']);
    expect(g.nodes[2]!.attrs).toEqual({ transB: true });
    expect(g.outputs).toEqual([{ name: 'y', value: 2 }]);
  });

  it('a dim name takes one size, and a model function must not be async', async () => {
    expect(() => build((m) => (m.dim('dim', 64), m.dim('dim', 64), void 0))).not.toThrow(/declared again/);
    const twice = (() => {
      try {
        build((m) => void (m.dim('dim', 64), m.dim('dim', 32)));
      } catch (e) {
        return e as KilnError;
      }
    })();
    expect(twice?.code).toBe('K1007');
    expect(twice?.message).toBe("dim 'dim' is declared again as 32; it was declared as 64");
    expect(twice?.loc?.file).toMatch(/dsl\.test\.ts$/);
    const later = model('later', (async (m: ModelBuilder) => {
      await Promise.resolve();
      m.output('y', m.input('x', 'f32', [2]));
    }) as unknown as (m: ModelBuilder) => void);
    expect(() => later.build()).toThrow(/the model function returned a Promise; it must declare the graph synchronously/);
  });

  it('a tensor of another model or of an earlier build is refused where it is used; feedForward refuses an activation it does not know', () => {
    let foreign: Tensor | undefined;
    model('a', (m) => {
      foreign = m.input('bias', 'f32', [2, 3]);
      m.output('o', foreign);
    }).build();
    const err = (() => {
      try {
        build((m) => m.output('y', add(m.input('x', 'f32', [2, 3]), foreign!)));
      } catch (e) {
        return e as KilnError;
      }
    })();
    expect(err?.code).toBe('K1015');
    expect(err?.message).toBe("add operand 1: the tensor %0 belongs to model 'a', not to this build of 't'; a tensor is used only in the model function that made it");
    expect(err?.loc?.file).toMatch(/dsl\.test\.ts$/);
    const ffn = (act: unknown) => () => build((m) => m.output('y', nn.feedForward(m.input('x', 'f32', [m.dim('seq'), 8]), { gate: 'g', up: 'u', down: 'd' }, 16, act as 'relu')));
    expect(ffn('silu')).toThrow('feedForward: activation must be one of swiglu, geglu, gelu, relu, relu2 or parseActivation(x => …), got "silu"');
    expect(ffn((v: number) => v)).toThrow('got a plain function (give parseActivation(x => …))');
    expect(ffn('relu')).not.toThrow();
    // an eps that is not a finite number ≥ 0, and a dtype that does not exist, say what is allowed
    expect(() => build((m) => m.output('y', nn.rmsNorm(m.input('x', 'f32', [2, 8]), 'w', NaN)))).toThrow('rmsnorm: eps must be a finite number ≥ 0, got NaN');
    expect(() => build((m) => m.output('y', m.input('x', 'f16' as 'f32', [2])))).toThrow('should be one of f32, i32, got "f16"');
  });

  it('turns numbers into scalar consts that broadcast', () => {
    const g = build((m) => {
      const x = m.input('x', 'f32', [3, 4]);
      m.output('y', add(mul(x, 0.5), 2));
    });
    expect(types(g)).toEqual(['input f32[3, 4]', 'const f32[]', 'mul f32[3, 4]', 'const f32[]', 'add f32[3, 4]']);
    expect(g.nodes[1]!.attrs).toEqual({ dtype: 'f32', shape: [], value: [0.5] });
  });

  it('computes on plain numbers with the same functions', () => {
    expect(sigmoid(0)).toBe(0.5);
    expect(exp(0)).toBe(1);
    expect(max(1, 2)).toBe(2);
    expect(mul(3, 4)).toBe(12);
  });

  it('records scopes and the line of this file on every node', () => {
    const g = build((m) => {
      const x = m.input('x', 'f32', [m.dim('seq'), 8]);
      m.scope('layers', () => m.scope(3, () => m.output('y', nn.linear(x, 'w', 4, 'q'))));
    });
    expect(g.nodes.map((n) => n.scope)).toEqual(['', 'layers.3.q', 'layers.3.q']);
    expect(g.nodes.every((n) => n.loc?.file === 'tests/dsl.test.ts')).toBe(true);
  });

  it('carries layout ops through to the IR', () => {
    const g = build((m) => {
      const seq = m.dim('seq');
      const x = m.input('x', 'f32', [seq, 6]);
      const r = reshape(x, [seq, 2, 3]);
      m.output('y', transpose(r, [1, 0, 2]));
    });
    expect(types(g)).toEqual(['input f32[seq, 6]', 'reshape f32[seq, 2, 3]', 'transpose f32[2, seq, 3]']);
  });
});

describe('shape errors point at the model file', () => {
  it('reports the fixture line and column with the dims', () => {
    let err: unknown;
    try {
      shapeMistake.build();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KilnError);
    const k = err as KilnError;
    expect(k.headline).toBe('tests/fixtures/dsl/shape-mistake.ts(11,13): error K1003: matmul inner dims differ: [seq, 64] @ [64, 256]ᵀ (64 vs 256)');
    expect(k.format().split('\n').slice(1)).toEqual(['11 |   const y = linear(ok, w);', '                 ^']);
  });

  it('reports a matmul built in this file at this file', () => {
    const err = (() => {
      try {
        build((m) => {
          matmul(m.input('a', 'f32', [2, 3]), m.param('b', [4, 5]));
        });
      } catch (e) {
        return e as KilnError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('K1003');
    expect(err?.loc?.file).toBe('tests/dsl.test.ts');
    expect(err?.message).toBe('matmul inner dims differ: [2, 3] @ [4, 5] (3 vs 4)');
  });
});

describe('attention', () => {
  const attnGraph = (nHeads: number, nKvHeads: number) =>
    build((m) => {
      const x = m.input('x', 'f32', [m.dim('seq'), 16]);
      const w = { q: 'wq', k: 'wk', v: 'wv', o: 'wo' };
      m.output('y', nn.attention(x, w, { nHeads, nKvHeads, headDim: 4, rope: { base: 10000, layout: 'half' } }));
    });

  it.each([
    [4, 4, 'MHA', []],
    [4, 2, 'GQA', ['reshape f32[2, 2*seq, 4]', 'matmul f32[2, 2*seq, seq]', 'reshape f32[4, seq, seq]']],
    [4, 1, 'MQA', ['reshape f32[1, 4*seq, 4]', 'matmul f32[1, 4*seq, seq]', 'reshape f32[4, seq, seq]']],
  ])('%i query heads over %i kv heads (%s) group the queries per kv head', (h, kv, _, grouped) => {
    const g = attnGraph(h, kv);
    const t = types(g);
    for (const line of grouped) expect(t).toContain(line);
    expect(t.filter((l) => l.startsWith('param'))).toEqual(['param f32[16, 16]', `param f32[${4 * kv}, 16]`, `param f32[${4 * kv}, 16]`, 'param f32[16, 16]']);
    expect(t.at(-1)).toBe('matmul f32[seq, 16]');
    expect(g.nodes.filter((n) => n.op === 'causal_mask')).toHaveLength(1);
    expect(new Set(g.nodes.map((n) => n.scope))).toEqual(new Set(['', 'attn', 'attn.q', 'attn.k', 'attn.v', 'attn.q_rope', 'attn.k_rope', 'attn.scores', 'attn.o']));
  });

  it('rejects heads that do not group', () => {
    expect(() => attnGraph(4, 3)).toThrow('attention: nHeads (4) must be divisible by nKvHeads (3)');
  });

  it('rejects a head count or size that is not a positive integer, at the call', () => {
    const err = (() => {
      try {
        build((m) => {
          const x = m.input('x', 'f32', [m.dim('seq'), 64]);
          m.output('y', nn.attention(x, { q: 'q', k: 'k', v: 'v', o: 'o' }, { nHeads: 5, nKvHeads: 5, headDim: 64 / 5 }));
        });
      } catch (e) {
        return e as KilnError;
      }
      return undefined;
    })();
    expect(err?.code).toBe('K1010');
    expect(err?.message).toBe('attention: headDim must be a positive integer, got 12.8');
    expect(err?.loc?.file).toBe('tests/dsl.test.ts');
    expect(() => attnGraph(4, 0)).toThrow('attention: nKvHeads must be a positive integer, got 0');
  });
});

describe('sizes and outputs', () => {
  const error = (fn: (m: ModelBuilder) => void): KilnError | undefined => {
    try {
      build(fn);
    } catch (e) {
      return e as KilnError;
    }
    return undefined;
  };

  it.each([
    ['a negative named dim', (m: ModelBuilder) => m.param('w', [m.dim('d', -4), 3]), 'K1007', "dim 'd' must be a positive integer, got -4"],
    ['a zero named dim', (m: ModelBuilder) => m.param('w', [m.dim('d', 0)]), 'K1007', "dim 'd' must be a positive integer, got 0"],
    ['a fractional size', (m: ModelBuilder) => m.input('x', 'f32', [m.dim('seq'), 2.5]), 'K1007', "input 'x': size 2.5 in its shape must be a positive integer"],
    ['a zero size', (m: ModelBuilder) => m.param('w', [0, 3]), 'K1007', "param 'w': size 0 in its shape must be a positive integer"],
    // −4 · −16 = 64: an element count alone would let this reshape through
    ['negative reshape sizes', (m: ModelBuilder) => reshape(m.input('x', 'f32', [m.dim('seq'), 64]), [m.dim('seq'), -4, -16]), 'K1007', "reshape attribute 'shape' has -4 in [seq, -4, -16]: a size must be a whole number or a named dim"],
  ])('rejects %s where it is written', (_, body, code, message) => {
    const err = error((m) => {
      m.output('y', body(m) as never);
    });
    expect(err?.code).toBe(code);
    expect(err?.message).toBe(message);
    expect(err?.loc?.file).toBe('tests/dsl.test.ts');
  });

  it('rejects an output declared twice, at the second', () => {
    const err = error((m) => {
      const x = m.input('x', 'f32', [4]);
      m.output('y', x);
      m.output('y', x);
    });
    expect(err?.message).toBe("output 'y' is declared twice");
    expect(err?.loc?.file).toBe('tests/dsl.test.ts');
  });

  it('rejects a model without outputs', () => {
    expect(error((m) => void m.input('x', 'f32', [4]))?.message).toBe("model 't' declares no outputs: call m.output(name, tensor) for what it computes");
  });
});

describe('nn blocks', () => {
  it('layerNorm is built from core ops', () => {
    const g = build((m) => m.output('y', nn.layerNorm(m.input('x', 'f32', [3, 8]), 'w', 'b', 1e-5)));
    expect(g.nodes.map((n) => n.op)).toEqual(['input', 'mean', 'sub', 'mul', 'mean', 'const', 'add', 'rsqrt', 'mul', 'param', 'mul', 'param', 'add']);
  });

  it.each([
    ['swiglu', ['silu', 'mul']],
    ['geglu', ['gelu', 'mul']],
    ['gelu', ['gelu']],
    ['relu', ['relu']],
    ['relu2', ['relu', 'mul']],
  ] as const)('feedForward %s', (act, ops) => {
    const g = build((m) => m.output('y', nn.feedForward(m.input('x', 'f32', [m.dim('seq'), 8]), { gate: 'g', up: 'u', down: 'd' }, 12, act)));
    const middle = g.nodes.filter((n) => !['input', 'param', 'matmul'].includes(n.op)).map((n) => n.op);
    expect(middle).toEqual(ops);
    expect(g.nodes.filter((n) => n.op === 'param').length).toBe(ops.at(-1) === 'mul' && act !== 'relu2' ? 3 : 2);
  });

  it('residual adds the block to its input', () => {
    const g = build((m) => {
      const x = m.input('x', 'f32', [2, 4]);
      m.output('y', nn.residual(x, (x) => mul(x, 3)));
    });
    expect(g.nodes.map((n) => n.op)).toEqual(['input', 'const', 'mul', 'add']);
  });
});
