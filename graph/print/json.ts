import { type Dim, dimToString, parseDim } from '../dim.js';
import { isDType } from '../dtype.js';
import { InternalError, KilnError, ShapeError, type SourceLoc } from '../errors.js';
import type { Graph, GraphMeta, GraphOutput, Node } from '../graph.js';
import { type AttrKind, type AttrValue, type Attrs, type FusedBody, OPS, isOpKind } from '../ops.js';
import { type TensorType, typeEq, typeToString } from '../types.js';
import { validate } from '../validate.js';
import { findJsonSyntaxError } from './json-syntax.js';

/**
 * The JSON form of a graph (documented in docs/graph-json.md). Dims are integers or strings in
 * the dim syntax (`"pos + seq"`); floats that JSON cannot hold are strings (`"NaN"`, `"Infinity"`,
 * `"-Infinity"`, `"-0"`). `parseGraph` checks every field by hand, so a mistake is reported as
 * K1014 with the file and the JSON path (`graph.json: nodes[3].attrs.shape[1]: expected a dim,
 * got true`), then the decoded graph must pass `validate`.
 */
export const GRAPH_FORMAT = 'kiln.graph';
export const GRAPH_VERSION = 1;

export type DimJSON = number | string;
export type FloatJSON = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';
export type AttrJSON = number | boolean | string | readonly (number | string)[] | BodyJSON;

export interface TensorTypeJSON {
  readonly dtype: string;
  readonly shape: readonly DimJSON[];
}

export interface NodeJSON {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: Readonly<Record<string, AttrJSON>>;
  readonly type: TensorTypeJSON;
  readonly scope: string;
  readonly loc?: SourceLoc;
}

/** A graph inside an attribute (a fused op's body): a graph without `format` and `version`. */
export interface BodyJSON {
  readonly name: string;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly nodes: readonly NodeJSON[];
  readonly outputs: readonly GraphOutput[];
}

export interface GraphJSON {
  readonly format: typeof GRAPH_FORMAT;
  readonly version: typeof GRAPH_VERSION;
  readonly name: string;
  readonly meta: Readonly<Record<string, unknown>>;
  readonly nodes: readonly NodeJSON[];
  readonly outputs: readonly GraphOutput[];
}

// ---------------------------------------------------------------------------------------------
// writing

function encodeDim(d: Dim): DimJSON {
  return typeof d === 'number' ? d : dimToString(d);
}

function encodeFloat(x: number): FloatJSON {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return Object.is(x, -0) ? '-0' : x;
}

function encodeAttr(kind: AttrKind | undefined, v: AttrValue): AttrJSON {
  switch (kind) {
    case 'dim':
      return encodeDim(v as Dim);
    case 'dims':
      return (v as Dim[]).map(encodeDim);
    case 'float':
      return encodeFloat(v as number);
    case 'floats':
      return (v as number[]).map(encodeFloat);
    case 'graph':
      return bodyToJSON(v as FusedBody);
    case undefined: // not in the op table: only in a graph that does not validate; keep it readable
      if (Array.isArray(v)) return v.map((x: unknown) => (typeof x === 'number' ? encodeFloat(x) : encodeDim(x as Dim)));
      return typeof v === 'object' ? encodeDim(v as Dim) : typeof v === 'number' ? encodeFloat(v) : (v as AttrJSON);
    default:
      return v as AttrJSON;
  }
}

/** Meta is plain JSON data; keys are sorted so equal graphs give equal text. */
function plainJSON(v: unknown, path: string): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (Array.isArray(v)) return v.map((x, i) => plainJSON(x, `${path}[${i}]`));
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, plainJSON((v as Record<string, unknown>)[k], `${path}.${k}`)]),
    );
  throw new InternalError(`graph ${path} is not JSON data: ${String(v)}`);
}

function nodeToJSON(n: Node): NodeJSON {
  const def = isOpKind(n.op) ? OPS[n.op] : undefined;
  const order = [...Object.keys(def?.attrs ?? {}), ...Object.keys(n.attrs).sort()];
  const attrs: [string, AttrJSON][] = [];
  for (const k of new Set(order)) {
    const v = n.attrs[k];
    if (v !== undefined) attrs.push([k, encodeAttr(def?.attrs[k], v)]);
  }
  const type = { dtype: n.type.dtype, shape: n.type.shape.map(encodeDim) };
  const base = { id: n.id, op: n.op, inputs: [...n.inputs], attrs: Object.fromEntries(attrs), type, scope: n.scope };
  return n.loc ? { ...base, loc: { file: n.loc.file, line: n.loc.line, col: n.loc.col } } : base;
}

function bodyToJSON(g: FusedBody): BodyJSON {
  return {
    name: g.name,
    meta: plainJSON(g.meta, 'meta') as Record<string, unknown>,
    nodes: g.nodes.map(nodeToJSON),
    outputs: g.outputs.map((o) => ({ name: o.name, value: o.value })),
  };
}

export function graphToJSON(g: Graph): GraphJSON {
  return { format: GRAPH_FORMAT, version: GRAPH_VERSION, ...bodyToJSON(g) };
}

/** Pretty and stable: fixed key order, one line per node and per output, so dumps diff by node. */
export function stringifyGraph(g: Graph): string {
  const j = graphToJSON(g);
  const list = (xs: readonly unknown[]) =>
    xs.length === 0 ? '[]' : `[\n${xs.map((x) => `    ${JSON.stringify(x)}`).join(',\n')}\n  ]`;
  const meta = JSON.stringify(j.meta, null, 2).replace(/\n/g, '\n  ');
  return [
    '{',
    `  "format": ${JSON.stringify(j.format)},`,
    `  "version": ${j.version},`,
    `  "name": ${JSON.stringify(j.name)},`,
    `  "meta": ${meta},`,
    `  "nodes": ${list(j.nodes)},`,
    `  "outputs": ${list(j.outputs)}`,
    '}',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// reading

/** `true`, `"pos +"`, `an object`: how a wrong value is named in an error. */
function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}…` : s;
}

class Reader {
  constructor(readonly source: string) {}

  fail(path: string, msg: string): never {
    throw new KilnError('K1014', `${this.source}: ${path ? `${path}: ` : ''}${msg}`);
  }

  expected(path: string, what: string, v: unknown): never {
    return this.fail(path, `expected ${what}, got ${describe(v)}`);
  }

  /** An object with exactly the `required` keys, and perhaps some `optional` ones. */
  object(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.expected(path, 'an object', v);
    const o = v as Record<string, unknown>;
    for (const k of required) if (!Object.hasOwn(o, k)) this.fail(path, `missing field "${k}"`);
    for (const k of Object.keys(o))
      if (!required.includes(k) && !optional.includes(k)) this.fail(path, `unknown field "${k}"`);
    return o;
  }

  array(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.expected(path, 'an array', v);
    return v as unknown[];
  }

  string(v: unknown, path: string): string {
    if (typeof v !== 'string') this.expected(path, 'a string', v);
    return v as string;
  }

  int(v: unknown, path: string, min = -Infinity): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      this.expected(path, min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : 'an integer', v);
    return v as number;
  }

  float(v: unknown, path: string): number {
    if (typeof v === 'number') return v;
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    if (v === '-0') return -0;
    return this.expected(path, 'a number (or "NaN", "Infinity", "-Infinity", "-0")', v);
  }

  dim(v: unknown, path: string): Dim {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    const d = typeof v === 'string' ? parseDim(v) : undefined;
    return d ?? this.expected(path, 'a dim', v);
  }

  /** A shape or a list of sizes: each a size ≥ 0, so that a bad one is named by its path here. */
  dims(v: unknown, path: string): Dim[] {
    return this.array(v, path).map((d, i) => {
      const at = `${path}[${i}]`;
      const dim = this.dim(d, at);
      return typeof dim === 'number' && dim < 0 ? this.expected(at, 'a size ≥ 0', d) : dim;
    });
  }

  attr(kind: AttrKind, v: unknown, path: string): AttrValue {
    switch (kind) {
      case 'int':
        return this.int(v, path);
      case 'float':
        return this.float(v, path);
      case 'bool':
        if (typeof v !== 'boolean') this.expected(path, 'true or false', v);
        return v as boolean;
      case 'string':
        return this.string(v, path);
      case 'dtype':
        if (!isDType(v)) this.expected(path, 'a dtype', v);
        return v as AttrValue;
      case 'dim':
        return this.dim(v, path);
      case 'dims':
        return this.dims(v, path);
      case 'ints':
        return this.array(v, path).map((x, i) => this.int(x, `${path}[${i}]`));
      case 'floats':
        return this.array(v, path).map((x, i) => this.float(x, `${path}[${i}]`));
      case 'graph':
        return this.body(this.object(v, path, ['name', 'meta', 'nodes', 'outputs']), path);
    }
  }

  /** Name, meta, nodes and outputs of a graph (the file's, or a fused op's body) at `path`. */
  body(o: Record<string, unknown>, path: string): FusedBody {
    const at = (k: string) => (path ? `${path}.${k}` : k);
    const name = this.string(o['name'], at('name'));
    const meta = this.object(o['meta'], at('meta'), [], Object.keys(o['meta'] ?? {}));
    const defined = new Map<number, { type: TensorType; path: string }>();
    const nodes = this.array(o['nodes'], at('nodes')).map((n, i) => this.node(n, `${at('nodes')}[${i}]`, defined));
    const names = new Set<string>();
    const outputs = this.array(o['outputs'], at('outputs')).map((x, i): GraphOutput => {
      const p = `${at('outputs')}[${i}]`;
      const out = this.object(x, p, ['name', 'value']);
      const oname = this.string(out['name'], `${p}.name`);
      if (oname === '') this.fail(`${p}.name`, 'an output needs a name');
      if (names.has(oname)) this.fail(`${p}.name`, `output "${oname}" is declared twice`);
      names.add(oname);
      const value = this.int(out['value'], `${p}.value`, 0);
      if (!defined.has(value)) this.fail(`${p}.value`, `%${value} is not defined by any node`);
      return { name: oname, value };
    });
    return { name, nodes, outputs, meta: meta as GraphMeta };
  }

  type(v: unknown, path: string): TensorType {
    const o = this.object(v, path, ['dtype', 'shape']);
    if (!isDType(o['dtype'])) this.expected(`${path}.dtype`, 'a dtype', o['dtype']);
    return { dtype: o['dtype'], shape: this.dims(o['shape'], `${path}.shape`) };
  }

  loc(v: unknown, path: string): SourceLoc {
    const o = this.object(v, path, ['file', 'line', 'col']);
    return { file: this.string(o['file'], `${path}.file`), line: this.int(o['line'], `${path}.line`, 1), col: this.int(o['col'], `${path}.col`, 1) };
  }

  node(v: unknown, path: string, defined: Map<number, { type: TensorType; path: string }>): Node {
    const o = this.object(v, path, ['id', 'op', 'inputs', 'attrs', 'type', 'scope'], ['loc']);
    const id = this.int(o['id'], `${path}.id`, 0);
    const prev = defined.get(id);
    if (prev) this.fail(`${path}.id`, `%${id} is already defined by ${prev.path}`);
    const op = o['op'];
    if (!isOpKind(op)) this.expected(`${path}.op`, 'an op name', op);
    const def = OPS[op as keyof typeof OPS];
    const inputs = this.array(o['inputs'], `${path}.inputs`).map((x, i) => {
      const p = `${path}.inputs[${i}]`;
      const ref = this.int(x, p, 0);
      if (!defined.has(ref)) this.fail(p, `%${ref} is not defined by an earlier node`);
      return ref;
    });
    if (def.arity === 'variadic' ? inputs.length < 1 : inputs.length !== def.arity)
      this.fail(`${path}.inputs`, `${def.kind} takes ${def.arity === 'variadic' ? 'one or more' : def.arity} operand(s), got ${inputs.length}`);
    const rawAttrs = this.object(o['attrs'], `${path}.attrs`, [], Object.keys(o['attrs'] ?? {}));
    for (const k of Object.keys(rawAttrs))
      if (!Object.hasOwn(def.attrs, k)) this.fail(`${path}.attrs`, `unknown attribute "${k}" of ${def.kind}`);
    const attrs: [string, AttrValue][] = [];
    for (const [k, kind] of Object.entries(def.attrs)) {
      if (Object.hasOwn(rawAttrs, k)) attrs.push([k, this.attr(kind, rawAttrs[k], `${path}.attrs.${k}`)]);
      else if (!def.optional?.includes(k)) this.fail(`${path}.attrs`, `missing attribute "${k}" of ${def.kind}`);
    }
    const type = this.type(o['type'], `${path}.type`);
    const node: Node = {
      id,
      op: def.kind,
      inputs,
      attrs: Object.fromEntries(attrs) as Attrs,
      type,
      scope: this.string(o['scope'], `${path}.scope`),
      ...(o['loc'] === undefined ? {} : { loc: this.loc(o['loc'], `${path}.loc`) }),
    };
    let inferred: TensorType;
    try {
      inferred = def.infer(
        inputs.map((i) => defined.get(i)!.type),
        node.attrs,
      );
    } catch (e) {
      if (e instanceof ShapeError) this.fail(path, e.message);
      throw e;
    }
    if (!typeEq(inferred, type))
      this.fail(`${path}.type`, `${typeToString(type)} differs from ${typeToString(inferred)}, which ${def.kind} gives here`);
    defined.set(id, { type, path });
    return node;
  }
}

/** Read a graph written by `stringifyGraph` (or by hand); `source` names the file in errors. */
export function parseGraph(text: string, source: string): Graph {
  const r = new Reader(source);
  let raw: unknown;
  // a byte-order mark (editors on Windows write one) is not part of the JSON
  if (text.startsWith('\uFEFF')) text = text.slice(1);
  try {
    raw = JSON.parse(text);
  } catch (e) {
    let where: ReturnType<typeof findJsonSyntaxError>;
    try {
      where = findJsonSyntaxError(text);
    } catch {
      where = undefined; // nesting too deep for the scanner: fall back on the engine's words
    }
    r.fail('', where ? `invalid JSON at line ${where.line}, column ${where.col}: ${where.reason}` : `invalid JSON: ${(e as Error).message}`);
  }
  const o = r.object(raw, '', ['format', 'version', 'name', 'meta', 'nodes', 'outputs']);
  if (o['format'] !== GRAPH_FORMAT) r.expected('format', `"${GRAPH_FORMAT}"`, o['format']);
  if (o['version'] !== GRAPH_VERSION) r.expected('version', `${GRAPH_VERSION}`, o['version']);
  const g: Graph = r.body(o, '');
  try {
    validate(g);
  } catch (e) {
    // What the checks above cannot see (a name declared twice): still the file's mistake.
    if (e instanceof KilnError) r.fail('', e.message);
    throw e;
  }
  return g;
}
