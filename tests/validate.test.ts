/**
 * The validator's and the builder's messages, pinned exactly: they are what a user (or a pass
 * author) reads, so a change to their text should be a deliberate one.
 */
import { describe, expect, test } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { sym } from '../graph/dim.js';
import type { Graph, GraphOutput, Node } from '../graph/graph.js';
import type { Attrs, OpKind } from '../graph/ops.js';
import type { TensorType } from '../graph/types.js';
import { validate } from '../graph/validate.js';
import { thrown } from './helpers.js';

const f32 = (...shape: number[]): TensorType => ({ dtype: 'f32', shape });
const node = (id: number, op: OpKind, inputs: number[], attrs: Attrs, type: TensorType, scope = ''): Node => ({ id, op, inputs, attrs, type, scope });
const input = (id: number, name: string, shape: number[]) => node(id, 'input', [], { name, dtype: 'f32', shape }, f32(...shape));
const graph = (nodes: Node[], outputs: GraphOutput[] = []): Graph => ({ name: 'g', nodes, outputs, meta: {} });

describe('validate', () => {
  test('accepts a well-formed graph', () => {
    expect(() => validate(graph([input(0, 'x', [2]), node(1, 'neg', [0], {}, f32(2))], [{ name: 'y', value: 1 }]))).not.toThrow();
  });

  test.each<[string, Graph, string]>([
    [
      'an operand used before it is defined',
      graph([input(0, 'x', [2]), node(1, 'neg', [2], {}, f32(2)), node(2, 'neg', [0], {}, f32(2))]),
      'graph g: %1: operand %2 is not defined before use (topological order)',
    ],
    [
      'an id defined twice',
      graph([input(0, 'x', [2]), node(0, 'neg', [0], {}, f32(2), 'layers.0')]),
      'graph g: %0 (layers.0): value defined twice (single assignment)',
    ],
    [
      'a recorded type the shape rule disagrees with',
      graph([input(0, 'x', [2]), node(1, 'neg', [0], {}, f32(3))]),
      'graph g: %1: recorded type f32[3] differs from inferred f32[2]',
    ],
    [
      'an unknown attribute',
      graph([input(0, 'x', [2]), node(1, 'neg', [0], { axis: 0 }, f32(2))]),
      "graph g: %1: neg has unknown attribute 'axis'",
    ],
    [
      'an attribute of the wrong kind',
      graph([input(0, 'x', [2, 2]), node(1, 'sum', [0], { axis: 0.5 }, f32(1, 2))]),
      "graph g: %1: sum attribute 'axis' should be int, got 0.5",
    ],
    [
      'an output naming an undefined value',
      graph([input(0, 'x', [2])], [{ name: 'y', value: 5 }]),
      "graph g: output 'y' refers to undefined value %5",
    ],
    [
      'a param name declared twice',
      graph([node(0, 'param', [], { name: 'w', dtype: 'f32', shape: [2] }, f32(2)), node(1, 'param', [], { name: 'w', dtype: 'f32', shape: [3] }, f32(3))]),
      "graph g: %1: param 'w' is declared twice (also %0)",
    ],
  ])('rejects %s', (_, g, message) => {
    const e = thrown(() => validate(g));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'K1015', message });
  });
});

describe('shape errors from GraphBuilder.add point at the line that called it', () => {
  // The headlines below pin line and column numbers of this file: moving these lines moves them.
  test('matmul inner dims', () => {
    const b = new GraphBuilder('g');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [3, 4] });
    const w = b.add('input', [], { name: 'w', dtype: 'f32', shape: [5, 6] });
    const e = thrown(() => b.add('matmul', [x, w], { transB: false }));
    expect(e.headline).toBe('tests/validate.test.ts(72,30): error K1003: matmul inner dims differ: [3, 4] @ [5, 6] (4 vs 5)');
  });

  test('matmul with transB and a symbolic dim', () => {
    const b = new GraphBuilder('g');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 4096] });
    const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [11008, 4095] });
    const e = thrown(() => b.add('matmul', [x, w], { transB: true }));
    expect(e.headline).toBe('tests/validate.test.ts(80,30): error K1003: matmul inner dims differ: [seq, 4096] @ [11008, 4095]ᵀ (4096 vs 4095)');
  });

  test('broadcast mismatch, and format() shows the line with a caret', () => {
    const b = new GraphBuilder('g');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [2, 3] });
    const y = b.add('input', [], { name: 'y', dtype: 'f32', shape: [4] });
    const e = thrown(() => b.add('add', [x, y]));
    expect(e.format()).toBe(
      [
        'tests/validate.test.ts(88,30): error K1001: add: shapes [2, 3] and [4] do not broadcast',
        "88 |     const e = thrown(() => b.add('add', [x, y]));",
        `${' '.repeat('88 | '.length + 30 - 1)}^`,
      ].join('\n'),
    );
  });

  test('a duplicate param found by build() carries the position of the second declaration', () => {
    const b = new GraphBuilder('g');
    b.add('param', [], { name: 'w', dtype: 'f32', shape: [2] });
    b.add('param', [], { name: 'w', dtype: 'f32', shape: [2] });
    const e = thrown(() => b.build());
    expect(e.headline).toBe("tests/validate.test.ts(101,7): error K1015: graph g: %1: param 'w' is declared twice (also %0)");
  });
});
