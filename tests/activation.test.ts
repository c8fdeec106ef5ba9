import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import { interpret } from '../graph/interpret.js';
import { hostTensor } from '../graph/tensor.js';
import { activation, model, parseActivation, sigmoid, tanh } from '../src/index.js';
import * as bad from './fixtures/dsl/bad-activations.js';

/** The ops an arrow becomes, in order, after the input. */
function opsOf(fn: (x: number) => number): string[] {
  const act = activation(fn);
  const g = model('act', (m) => m.output('y', act(m.input('x', 'f32', [4])))).build();
  return g.nodes.slice(1).map((n) => (n.op === 'const' ? `const ${(n.attrs['value'] as number[])[0]}` : n.op));
}

describe('custom activations become elementwise IR', () => {
  it.each<[string, (x: number) => number, string[]]>([
    ['quick GELU', (x) => x * sigmoid(1.702 * x), ['const 1.702', 'mul', 'sigmoid', 'mul']],
    ['a power', (x) => x ** 2, ['const 2', 'pow']],
    ['unary minus, Math.*, division', (x) => -x + Math.tanh(x) / 2, ['neg', 'tanh', 'const 2', 'div', 'add']],
    ['another parameter name, max', (v) => Math.max(v, 0), ['const 0', 'max']],
    ['a negative literal in a block body', (y) => {
      return y * -1.5;
    }, ['const -1.5', 'mul']],
    ['parentheses and constants', (x) => (x + 1) * (x - Math.PI), ['const 1', 'add', 'const ' + Math.PI, 'sub', 'mul']],
    ['the identity', (x) => x, []],
    ['tanh-form GELU by hand', (x) => 0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x ** 3))), [
      'const 0.5', 'mul', 'const 1', 'const 0.7978845608', 'const 0.044715', 'const 3', 'pow', 'mul', 'add', 'mul', 'tanh', 'add', 'mul',
    ]],
  ])('%s', (_, fn, ops) => {
    expect(opsOf(fn)).toEqual(ops);
  });

  it('reads the parameter name from the source', () => {
    expect(parseActivation((alpha) => alpha * 2).param).toBe('alpha');
    expect(parseActivation((x) => sigmoid(x)).expr).toEqual({ kind: 'unary', op: 'sigmoid', arg: { kind: 'param' } });
  });

  it('computes what the arrow computes on numbers', () => {
    const fns: ((x: number) => number)[] = [
      (x) => x * sigmoid(1.702 * x),
      (x) => Math.max(x, 0) ** 2 - Math.min(x, -0.5) / 3,
      (x) => Math.exp(-x * x) + Math.sin(x) * Math.cos(x) - Math.abs(x),
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fns), fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: 1, maxLength: 8 }), (fn, xs) => {
        const act = activation(fn);
        const g = model('act', (m) => m.output('y', act(m.input('x', 'f32', [xs.length])))).build();
        const y = interpret(g, { inputs: { x: hostTensor('f32', [xs.length], xs) } })['y']!;
        xs.forEach((x, i) => expect(y.data[i]).toBeCloseTo(fn(x), 12));
      }),
      { numRuns: 50 },
    );
  });
});

describe('unsupported syntax is an error inside the arrow', () => {
  const SUPPORTED =
    'supported: one parameter, numbers, + - * / **, unary -, parentheses, and calls to exp/log/sqrt/rsqrt/sin/cos/tanh/sigmoid/relu/silu/gelu/abs/max/min/pow (also as Math.*)';
  const F = 'tests/fixtures/dsl/bad-activations.ts';
  it.each([
    ['ternary', `${F}(6,67): error K1011: unsupported syntax in activation: ConditionalExpression (x > 0 ? x : 0); ${SUPPORTED}`],
    ['closure', `${F}(9,60): error K1011: unsupported syntax in activation: Identifier (k): only the parameter x may be named (no closure variables); ${SUPPORTED}`],
    ['loop', `${F}(13,5): error K1011: unsupported syntax in activation: VariableDeclaration (let y = x;): a block body may only hold one return statement; ${SUPPORTED}`],
    ['unknownCall', `${F}(18,56): error K1011: unsupported syntax in activation: CallExpression (Math.floor(x)); ${SUPPORTED}`],
    ['definedAbove', `${F}(20,31): error K1011: unsupported syntax in activation: ConditionalExpression (x > 0 ? sigmoid(x) : 0); ${SUPPORTED}`],
    // a decimal literal (which a minifier may print as .01) is found, and quoted as written
    ['decimal', `${F}(23,67): error K1011: unsupported syntax in activation: ConditionalExpression (x > 0 ? x : 0.01 * x); ${SUPPORTED}`],
  ])('%s', (name, headline) => {
    const make = (bad as Record<string, () => unknown>)[name]!;
    let err: unknown;
    try {
      make();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).headline).toBe(headline);
  });

  it('rejects functions that are not one-parameter arrows', () => {
    expect(() => parseActivation(function (x: number) { return x; })).toThrow(/unsupported syntax in activation: FunctionExpression .*: write an arrow function/);
    expect(() => parseActivation(((a: number, b: number) => a + b) as unknown as (x: number) => number)).toThrow(/exactly one plain parameter/);
    expect(() => parseActivation(() => 1)).toThrow(/exactly one plain parameter/);
  });
});
