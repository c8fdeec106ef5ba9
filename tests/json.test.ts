import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../graph/builder.js';
import { dimAdd, sym } from '../graph/dim.js';
import { KilnError } from '../graph/errors.js';
import type { Graph } from '../graph/graph.js';
import { graphToJSON, parseGraph, stringifyGraph } from '../graph/print/index.js';
import { arbGraph } from './arbitrary.js';

/** x[seq, 8] → rmsnorm → matmul with a [4, 8] weight (transB) → + const, with a little meta. */
function small(): Graph {
  const b = new GraphBuilder('small');
  const at = (line: number) => ({ file: 'examples/small.ts', line, col: 5 });
  const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [sym('seq'), 8] }, at(1));
  const nw = b.add('param', [], { name: 'norm.w', dtype: 'f32', shape: [8] }, at(2));
  const n = b.within('norm', () => b.add('rmsnorm', [x, nw], { eps: 1e-5 }, at(3)));
  const w = b.add('param', [], { name: 'w', dtype: 'f32', shape: [4, 8] }, at(4));
  const y = b.add('matmul', [n, w], { transB: true }, at(5));
  const c = b.add('const', [], { dtype: 'f32', shape: [4], value: [NaN, Infinity, -Infinity, -0] }, at(6));
  const z = b.add('add', [y, c], {}, at(7));
  b.output('z', z);
  b.setMeta('config', { dim: 8, eps: 1e-5, tied: false, name: 'small', layers: [1, 2] });
  return b.build();
}

/** The JSON of `small()` as plain data, to break in one place per test. */
function smallJSON(): any {
  return JSON.parse(stringifyGraph(small()));
}

function errorOf(text: string): KilnError {
  try {
    parseGraph(text, 'graph.json');
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('parseGraph accepted the input');
}

/** Parse JSON data after `edit`, expecting K1014 with exactly `message`. */
function rejects(edit: (j: any) => void, message: string): void {
  const j = smallJSON();
  edit(j);
  const e = errorOf(JSON.stringify(j));
  expect(e.code).toBe('K1014');
  expect(e.message).toBe(message);
}

describe('graph JSON', () => {
  it('round-trips every random graph: parse(stringify(g)) equals g, and stringify is stable', () => {
    fc.assert(
      fc.property(arbGraph(), (g) => {
        const text = stringifyGraph(g);
        const back = parseGraph(text, 'g.json');
        expect(back).toEqual(g);
        expect(stringifyGraph(back)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });

  it('writes the format, the version, dims as strings and non-finite floats as strings', () => {
    const j = graphToJSON(small());
    expect(j.format).toBe('kiln.graph');
    expect(j.version).toBe(1);
    expect(j.nodes[0]!.type.shape).toEqual(['seq', 8]);
    expect(j.nodes[5]!.attrs['value']).toEqual(['NaN', 'Infinity', '-Infinity', '-0']);
    expect(j.nodes[2]!.attrs['eps']).toBe(1e-5);
    const back = parseGraph(stringifyGraph(small()), 'graph.json');
    expect(back.nodes[5]!.attrs['value']).toEqual([NaN, Infinity, -Infinity, -0]);
    expect(Object.is((back.nodes[5]!.attrs['value'] as number[])[3], -0)).toBe(true);
    expect(back.meta).toEqual({ config: { dim: 8, eps: 1e-5, tied: false, name: 'small', layers: [1, 2] } });
  });

  it('writes one line per node, keys in a fixed order', () => {
    const lines = stringifyGraph(small()).split('\n');
    expect(lines.slice(0, 4)).toEqual(['{', '  "format": "kiln.graph",', '  "version": 1,', '  "name": "small",']);
    expect(lines).toContain(
      '    {"id":4,"op":"matmul","inputs":[2,3],"attrs":{"transB":true},"type":{"dtype":"f32","shape":["seq",4]},"scope":"","loc":{"file":"examples/small.ts","line":5,"col":5}},',
    );
  });

  it('decodes symbolic dims written as expressions', () => {
    const b = new GraphBuilder('dims');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [dimAdd(sym('pos'), sym('seq')), 4] }, undefined);
    b.add('slice', [x], { axis: 0, start: sym('pos'), end: dimAdd(sym('pos'), sym('seq')) }, undefined);
    const g = b.build();
    const text = stringifyGraph(g);
    expect(text).toContain('"shape":["pos + seq",4]');
    expect(text).toContain('"start":"pos","end":"pos + seq"');
    expect(parseGraph(text, 'dims.json')).toEqual(g);
  });
});

describe('malformed graph JSON is K1014 naming the file and the JSON path', () => {
  it('reports JSON syntax errors with a line and column', () => {
    expect(errorOf('{"format": }').message).toBe('graph.json: invalid JSON at line 1, column 12: unexpected "}"');
    expect(errorOf('{\n  "a": 1,\n  "b" 2\n}').message).toBe("graph.json: invalid JSON at line 3, column 7: expected ':' after a key, got \"2\"");
    expect(errorOf('[1, 2').message).toBe("graph.json: invalid JSON at line 1, column 6: expected ',' or ']', got end of input");
    expect(errorOf('').message).toBe('graph.json: invalid JSON at line 1, column 1: unexpected end of input');
    expect(errorOf('{} x').message).toBe('graph.json: invalid JSON at line 1, column 4: unexpected "x" after the end of the value');
    expect(errorOf('{"a": "b\nc"}').message).toBe('graph.json: invalid JSON at line 1, column 9: control character in a string (escape it)');
    expect(errorOf('{"a": 01}').message).toBe("graph.json: invalid JSON at line 1, column 8: expected ',' or '}', got \"1\"");
    expect(errorOf('{"a": "x').message).toBe('graph.json: invalid JSON at line 1, column 7: unterminated string');
    expect(errorOf('[tru]').message).toBe('graph.json: invalid JSON at line 1, column 2: unexpected "t"');
    expect(errorOf('{"a": 1,}').code).toBe('K1014');
  });

  it('reads a file that starts with a byte-order mark', () => {
    const g = small();
    expect(parseGraph(`\uFEFF${stringifyGraph(g)}`, 'graph.json')).toEqual(parseGraph(stringifyGraph(g), 'graph.json'));
  });

  it('checks the top level', () => {
    expect(errorOf('[]').message).toBe('graph.json: expected an object, got an array');
    rejects((j) => (j.format = 'onnx'), 'graph.json: format: expected "kiln.graph", got "onnx"');
    rejects((j) => (j.version = 2), 'graph.json: version: expected 1, got 2');
    rejects((j) => delete j.nodes, 'graph.json: missing field "nodes"');
    rejects((j) => (j.extra = 1), 'graph.json: unknown field "extra"');
    rejects((j) => (j.name = 3), 'graph.json: name: expected a string, got 3');
    rejects((j) => (j.meta = [1]), 'graph.json: meta: expected an object, got an array');
    rejects((j) => (j.nodes = {}), 'graph.json: nodes: expected an array, got an object');
  });

  it('checks each node', () => {
    rejects((j) => (j.nodes[0].attrs.shape[1] = true), 'graph.json: nodes[0].attrs.shape[1]: expected a dim, got true');
    rejects((j) => (j.nodes[0].type.shape[0] = 'seq +'), 'graph.json: nodes[0].type.shape[0]: expected a dim, got "seq +"');
    rejects((j) => (j.nodes[0].type.shape[1] = 8.5), 'graph.json: nodes[0].type.shape[1]: expected a dim, got 8.5');
    rejects((j) => (j.nodes[0].type.shape[1] = 1e20), 'graph.json: nodes[0].type.shape[1]: expected a dim, got 100000000000000000000');
    rejects((j) => (j.nodes[0].type.shape[1] = -8), 'graph.json: nodes[0].type.shape[1]: expected a size ≥ 0, got -8');
    rejects((j) => (j.nodes[0].type.dtype = 'f16'), 'graph.json: nodes[0].type.dtype: expected a dtype, got "f16"');
    rejects((j) => (j.nodes[2].op = 'layernorm'), 'graph.json: nodes[2].op: expected an op name, got "layernorm"');
    rejects((j) => delete j.nodes[2].scope, 'graph.json: nodes[2]: missing field "scope"');
    rejects((j) => (j.nodes[2].extra = 0), 'graph.json: nodes[2]: unknown field "extra"');
    rejects((j) => (j.nodes[2].id = -1), 'graph.json: nodes[2].id: expected a non-negative integer, got -1');
    rejects((j) => (j.nodes[2].id = 1), 'graph.json: nodes[2].id: %1 is already defined by nodes[1]');
    rejects((j) => (j.nodes[2].inputs[1] = 9), 'graph.json: nodes[2].inputs[1]: %9 is not defined by an earlier node');
    rejects((j) => (j.nodes[2].inputs = [0]), 'graph.json: nodes[2].inputs: rmsnorm takes 2 operand(s), got 1');
    rejects((j) => (j.nodes[2].attrs.eps = 'tiny'), 'graph.json: nodes[2].attrs.eps: expected a number (or "NaN", "Infinity", "-Infinity", "-0"), got "tiny"');
    rejects((j) => delete j.nodes[2].attrs.eps, 'graph.json: nodes[2].attrs: missing attribute "eps" of rmsnorm');
    rejects((j) => (j.nodes[2].attrs.axis = 1), 'graph.json: nodes[2].attrs: unknown attribute "axis" of rmsnorm');
    rejects((j) => (j.nodes[4].attrs.transB = 1), 'graph.json: nodes[4].attrs.transB: expected true or false, got 1');
    rejects((j) => (j.nodes[5].attrs.value[0] = 'nan'), 'graph.json: nodes[5].attrs.value[0]: expected a number (or "NaN", "Infinity", "-Infinity", "-0"), got "nan"');
    rejects((j) => (j.nodes[2].loc.line = 0), 'graph.json: nodes[2].loc.line: expected a positive integer, got 0');
    rejects((j) => (j.nodes[2].loc = 'here'), 'graph.json: nodes[2].loc: expected an object, got "here"');
  });

  it('checks types and shape rules on load', () => {
    rejects((j) => (j.nodes[4].type.shape[1] = 5), 'graph.json: nodes[4].type: f32[seq, 5] differs from f32[seq, 4], which matmul gives here');
    rejects((j) => (j.nodes[4].attrs.transB = false), 'graph.json: nodes[4]: matmul inner dims differ: [seq, 8] @ [4, 8] (8 vs 4)');
  });

  it('checks the body of a fused op like the graph around it, with the path into it', () => {
    const body = new GraphBuilder('body');
    const a = body.add('input', [], { name: 'arg0', dtype: 'f32', shape: [4] }, undefined);
    body.output('out', body.add('exp', [a], {}, undefined));
    const b = new GraphBuilder('outer');
    const x = b.add('input', [], { name: 'x', dtype: 'f32', shape: [4] }, undefined);
    b.output('y', b.add('fused', [x], { pattern: 'elementwise', body: body.build() }, undefined));
    const g = b.build();
    const text = stringifyGraph(g);
    expect(parseGraph(text, 'f.json')).toEqual(g);
    const broken = (edit: (j: any) => void) => {
      const j = JSON.parse(text);
      edit(j);
      return errorOf(JSON.stringify(j)).message;
    };
    expect(broken((j) => (j.nodes[1].attrs.body.nodes[1].op = 'expp'))).toBe('graph.json: nodes[1].attrs.body.nodes[1].op: expected an op name, got "expp"');
    expect(broken((j) => delete j.nodes[1].attrs.body.meta)).toBe('graph.json: nodes[1].attrs.body: missing field "meta"');
    expect(broken((j) => (j.nodes[1].attrs.body.outputs = []))).toBe('graph.json: nodes[1]: fused: body must have one output, has 0');
  });

  it('checks outputs and what only the validator sees', () => {
    rejects((j) => (j.outputs[0].value = 42), 'graph.json: outputs[0].value: %42 is not defined by any node');
    rejects((j) => j.outputs.push({ name: 'z', value: 1 }), 'graph.json: outputs[1].name: output "z" is declared twice');
    rejects((j) => (j.outputs[0].name = ''), 'graph.json: outputs[0].name: an output needs a name');
    rejects((j) => (j.nodes[3].attrs.name = 'norm.w'), "graph.json: graph small: %3: param 'norm.w' is declared twice (also %1)");
  });
});
