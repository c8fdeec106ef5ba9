import fc from 'fast-check';
import { GraphBuilder } from '../../graph/builder.js';
import { type Dim, dimAdd, dimScale, dimSub, isStatic, sym } from '../../graph/dim.js';
import type { DType } from '../../graph/dtype.js';
import { KilnError, type SourceLoc } from '../../graph/errors.js';
import type { Graph, Node } from '../../graph/graph.js';
import { type AttrKind, type AttrValue, type FusedBody, OPS, type OpKind, SOURCE_OPS } from '../../graph/ops.js';
import { type TensorType, normAxis } from '../../graph/types.js';

/**
 * `arbGraph()`: random *valid* graphs for property tests of printers, passes and backends.
 *
 * A graph is built through GraphBuilder from a recipe fast-check generates: a small pool of dims
 * (static sizes and symbols such as `seq`, `pos + seq`), a few inputs/params/state of shapes
 * drawn from the pool, then a sequence of steps. Each step draws an op from the table (or from
 * `ops`), operands among the values so far and attributes by their declared kind, and keeps the
 * node only if the op's shape rule accepts it (it tries a few operands and attributes, then skips
 * the step). Dims are drawn from the pool so shapes often agree, which is what lets binary ops and
 * matmuls through. An op with a graph attribute (`fused`) gets a body made for its operands: inputs
 * arg0, arg1, … then a few random core ops. Scopes, source positions, outputs and `meta` are random
 * too.
 *
 * Steps carry a seed rather than fast-check choices for every detail: shrinking removes steps,
 * sources and outputs, which is what makes a failing graph small.
 */
export interface ArbGraphOptions {
  /** Most steps after the sources (each adds at most one node). Default 12. */
  readonly maxNodes?: number;
  /** Ops the steps draw from. Default: the whole table (sources included). */
  readonly ops?: readonly OpKind[];
  /** Dim symbols the shapes may use. Default `['seq', 'pos']`; `[]` for static graphs only. */
  readonly symbols?: readonly string[];
  /** Dtypes of the initial sources. Default both f32 and i32 (i32 less often). */
  readonly dtypes?: readonly DType[];
}

const SCOPES = ['', 'embed', 'layers.0', 'layers.0.attn', 'layers.0.ffn', 'layers.1.attn', 'head', 'a.b.c'];
const NAMES = ['tiny', 'g', 'with "quotes" and \\ backslash'];
const LAYOUTS = ['interleaved', 'half'];
const NICE_FLOATS = [1e-5, 1e-6, 0.5, 10000, 500000, -2.25];
/** Values JSON cannot hold as numbers: every writer and reader must carry them. */
const ODD_FLOATS = [NaN, Infinity, -Infinity, -0];

/** A small deterministic generator (mulberry32): a step's choices all come from its seed. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const x = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(x * Math.max(1, n));
  };
}

const arbDim = (symbols: readonly string[]): fc.Arbitrary<Dim> => {
  const statics = fc.integer({ min: 1, max: 6 });
  if (symbols.length === 0) return statics;
  const s = fc.constantFrom(...symbols).map(sym);
  return fc.oneof(
    { weight: 3, arbitrary: statics },
    { weight: 2, arbitrary: s },
    { weight: 1, arbitrary: fc.tuple(s, fc.integer({ min: 1, max: 3 })).map(([d, k]) => dimAdd(d, k)) },
    { weight: 1, arbitrary: fc.tuple(s, s).map(([a, b]) => dimAdd(a, b)) },
    { weight: 1, arbitrary: s.map((d) => dimScale(d, 2)) },
  );
};

interface Step {
  readonly seed: number;
  readonly floats: readonly number[];
  readonly loc: SourceLoc | undefined;
}

interface Recipe {
  readonly name: string;
  readonly pool: readonly Dim[];
  readonly sources: readonly { readonly op: 'input' | 'param' | 'state'; readonly dtype: DType; readonly shape: readonly number[]; readonly scope: number }[];
  readonly steps: readonly Step[];
  readonly outputs: readonly number[];
  readonly meta: Readonly<Record<string, unknown>>;
}

const arbLoc: fc.Arbitrary<SourceLoc | undefined> = fc.option(
  fc.record({ file: fc.constantFrom('model.ts', 'examples/llama.ts'), line: fc.integer({ min: 1, max: 500 }), col: fc.integer({ min: 1, max: 80 }) }),
  { nil: undefined },
);

export function arbGraph(opts: ArbGraphOptions = {}): fc.Arbitrary<Graph> {
  const symbols = opts.symbols ?? ['seq', 'pos'];
  const dtypes = opts.dtypes ?? ['f32', 'f32', 'f32', 'i32'];
  const recipe: fc.Arbitrary<Recipe> = fc.record({
    name: fc.constantFrom(...NAMES),
    // 1, 2 and 4 are always there: broadcasting and rope (an even head dim) need them.
    pool: fc.array(arbDim(symbols), { minLength: 1, maxLength: 4 }).map((ds) => [1, 2, 4, ...ds]),
    sources: fc.array(
      fc.record({
        op: fc.constantFrom('input' as const, 'param' as const, 'state' as const),
        dtype: fc.constantFrom(...dtypes),
        shape: fc.array(fc.nat(), { maxLength: 3 }),
        scope: fc.nat(),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    steps: fc.array(fc.record({ seed: fc.nat(), floats: fc.array(fc.double(), { minLength: 1, maxLength: 4 }), loc: arbLoc }), {
      maxLength: opts.maxNodes ?? 12,
    }),
    outputs: fc.array(fc.nat(), { maxLength: 3 }),
    // Through JSON once: meta is JSON data, where -0 does not exist.
    meta: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }).map((m) => JSON.parse(JSON.stringify(m)) as Record<string, unknown>),
  });
  return recipe.map((r) => buildGraph(r, opts.ops ?? (Object.keys(OPS) as OpKind[])));
}

function inScope<T>(b: GraphBuilder, scope: string, fn: () => T): T {
  const segs = scope === '' ? [] : scope.split('.');
  const go = (i: number): T => (i === segs.length ? fn() : b.within(segs[i]!, () => go(i + 1)));
  return go(0);
}

function buildGraph(r: Recipe, ops: readonly OpKind[]): Graph {
  const b = new GraphBuilder(r.name);
  const types: TensorType[] = [];
  const noLoc = new Set<number>();
  const defaultLoc: SourceLoc = { file: 'model.ts', line: 1, col: 1 };
  r.sources.forEach((s, k) => {
    const shape = s.shape.map((i) => r.pool[i % r.pool.length]!);
    const id = inScope(b, SCOPES[s.scope % SCOPES.length]!, () =>
      b.add(s.op, [], { name: `${s.op}${k}`, dtype: s.dtype, shape }, { file: 'model.ts', line: 1 + k, col: 3 }),
    );
    types[id] = b.typeOf(id);
  });
  for (const step of r.steps) {
    const pick = rng(step.seed);
    const scope = SCOPES[pick(SCOPES.length)]!;
    // The op is drawn once per step, so ops with picky rules (rope, matmul) get their tries too.
    const op = ops[pick(ops.length)]!;
    for (let attempt = 0; attempt < 8; attempt++) {
      const drawn = drawNode(op, types, r.pool, step.floats, pick);
      try {
        const id = inScope(b, scope, () => b.add(op, drawn.inputs, drawn.attrs, step.loc ?? defaultLoc));
        if (!step.loc) noLoc.add(id);
        types[id] = b.typeOf(id);
        break;
      } catch (e) {
        if (!(e instanceof KilnError)) throw e;
      }
    }
  }
  r.outputs.forEach((o, k) => b.output(`out${k}`, o % types.length));
  for (const [k, v] of Object.entries(r.meta)) b.setMeta(k, v);
  const g = b.build();
  // The builder captures a call site when given none; a graph without positions is drawn by dropping them.
  const strip = (n: Node): Node => {
    if (!noLoc.has(n.id)) return n;
    const { loc: _, ...rest } = n;
    return rest;
  };
  return { ...g, nodes: g.nodes.map(strip) };
}

interface Drawn {
  readonly inputs: number[];
  readonly attrs: Record<string, AttrValue>;
}

/** Operands and attributes for one try of `op`; the shape rule has the last word. */
function drawNode(op: OpKind, types: readonly TensorType[], pool: readonly Dim[], floats: readonly number[], pick: (n: number) => number): Drawn {
  const def = OPS[op];
  const arity = def.arity === 'variadic' ? 1 + pick(3) : def.arity;
  const n = types.length;
  // Recent values half the time: chains of ops are what real graphs are made of.
  const any = () => (pick(2) === 0 ? n - 1 - pick(Math.min(n, 4)) : pick(n));
  const inputs: number[] = arity > 0 ? [any()] : [];
  // A body is made to fit its operands, so ops with one take all their operands first.
  if (hasBody(op)) while (inputs.length < arity) inputs.push(any());
  const first = arity > 0 ? types[inputs[0]!] : undefined;
  const operands = inputs.map((i) => types[i]!);
  const attrs: Record<string, AttrValue> = {};
  for (const [name, kind] of Object.entries(def.attrs)) {
    if (def.optional?.includes(name) && pick(2) === 0) continue;
    attrs[name] = drawAttr(op, name, kind, { first, operands, attrs, pool, floats, pick, id: n });
  }
  for (let k = inputs.length; k < arity; k++) {
    // Prefer operands the rule accepts next to the first; otherwise any value (which may fail).
    const fits = types.map((_, i) => i).filter((i) => accepts(op, [first!, types[i]!], attrs));
    inputs.push(fits.length > 0 && pick(4) !== 0 ? fits[pick(fits.length)]! : any());
  }
  return { inputs, attrs };
}

function accepts(op: OpKind, ts: readonly TensorType[], attrs: Record<string, AttrValue>): boolean {
  try {
    OPS[op].infer(ts, attrs);
    return true;
  } catch {
    return false;
  }
}

function hasBody(op: OpKind): boolean {
  return Object.values(OPS[op].attrs).includes('graph');
}

/** Ops a fused body may hold: no sources (its only inputs are arg0, arg1, …), no nested bodies. */
const BODY_OPS = (Object.keys(OPS) as OpKind[]).filter((k) => !(SOURCE_OPS as readonly string[]).includes(k) && !hasBody(k));
const BODY_LOC: SourceLoc = { file: 'passes/fuse.ts', line: 1, col: 1 };

/** A body for a fused op over `operands`: inputs arg0… of their types, then 1–3 random ops. */
function drawBody(operands: readonly TensorType[], c: AttrCtx): FusedBody {
  const b = new GraphBuilder('body');
  const types: TensorType[] = [];
  operands.forEach((t, i) => {
    const id = b.add('input', [], { name: `arg${i}`, dtype: t.dtype, shape: [...t.shape] }, BODY_LOC);
    types[id] = t;
  });
  const steps = 1 + c.pick(3);
  for (let s = 0; s < steps; s++) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const op = BODY_OPS[c.pick(BODY_OPS.length)]!;
      const drawn = drawNode(op, types, c.pool, c.floats, c.pick);
      try {
        const id = b.add(op, drawn.inputs, drawn.attrs, BODY_LOC);
        types[id] = b.typeOf(id);
        break;
      } catch (e) {
        if (!(e instanceof KilnError)) throw e;
      }
    }
  }
  b.output('out', types.length - 1);
  return b.build();
}

interface AttrCtx {
  readonly first: TensorType | undefined;
  readonly operands: readonly TensorType[];
  readonly attrs: Record<string, AttrValue>;
  readonly pool: readonly Dim[];
  readonly floats: readonly number[];
  readonly pick: (n: number) => number;
  readonly id: number;
}

function drawAttr(op: OpKind, name: string, kind: AttrKind, c: AttrCtx): AttrValue {
  const { pick, pool } = c;
  const choose = <T>(xs: readonly T[]): T => xs[pick(xs.length)]!;
  const shapeSoFar = (c.attrs['shape'] as Dim[] | undefined) ?? c.first?.shape ?? [];
  const rank = c.first?.shape.length ?? shapeSoFar.length;
  switch (kind) {
    case 'int':
      return name === 'axis' ? pick(2 * Math.max(rank, 1)) - Math.max(rank, 1) : pick(5) - 1;
    case 'float':
      return drawFloat(c, 0);
    case 'bool':
      return pick(2) === 1;
    case 'string':
      if (name === 'name') return pick(4) === 0 ? `${op} "${c.id}"` : `${op}.${c.id}`;
      return name === 'layout' ? choose(LAYOUTS) : choose(['a', 'b']);
    case 'dtype':
      return pick(4) === 0 ? 'i32' : 'f32';
    case 'dim': {
      if (op === 'slice' && c.first) {
        const size = c.first.shape[normAxis(c.attrs['axis'] as number, rank) ?? 0] ?? 1;
        if (name === 'start') return choose([0, 0, 1, dimSub(size, 1)]);
        const start = (c.attrs['start'] as Dim | undefined) ?? 0;
        return choose([size, size, dimSub(size, 1), dimAdd(start, 1), start]);
      }
      return choose([0, 1, ...pool]);
    }
    case 'dims':
      if (name === 'shape' && c.first && op === 'reshape') return reshapeOf(c.first.shape, pick);
      if (name === 'shape' && c.first && op === 'broadcast') return broadcastOf(c.first.shape, pool, pick);
      return Array.from({ length: pick(4) }, () => (op === 'const' ? choose(pool.filter(isStatic)) : choose(pool)));
    case 'ints':
      if (name === 'perm') return permutation(rank, pick);
      return Array.from({ length: pick(4) }, () => pick(5) - 1);
    case 'graph':
      return drawBody(c.operands, c);
    case 'floats': {
      const count = shapeSoFar.every(isStatic) ? shapeSoFar.reduce<number>((a, d) => a * (d as number), 1) : 1;
      const len = pick(2) === 0 || count > 64 ? 1 : count;
      return Array.from({ length: len }, (_, i) => drawFloat(c, i));
    }
  }
}

function drawFloat(c: AttrCtx, i: number): number {
  const way = c.pick(4);
  if (way === 0) return c.floats[i % c.floats.length]!;
  return way === 1 ? ODD_FLOATS[c.pick(ODD_FLOATS.length)]! : NICE_FLOATS[c.pick(NICE_FLOATS.length)]!;
}

function permutation(n: number, pick: (n: number) => number): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = pick(i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** A shape with the same element count: a 1 added or removed, two dims merged, one split, or reversed. */
function reshapeOf(shape: readonly Dim[], pick: (n: number) => number): Dim[] {
  const s = [...shape];
  const way = pick(4);
  if (way === 0) s.splice(pick(s.length + 1), 0, 1);
  else if (way === 1 && s.includes(1)) s.splice(s.indexOf(1), 1);
  else if (way === 2 && s.length >= 2) {
    const i = pick(s.length - 1);
    const [a, b] = [s[i]!, s[i + 1]!];
    // Only a product with a static factor is a linear dim.
    const merged = isStatic(a) ? dimScale(b, a) : isStatic(b) ? dimScale(a, b) : undefined;
    if (merged !== undefined) s.splice(i, 2, merged);
  } else if (way === 3) {
    const i = s.findIndex((d) => isStatic(d) && d % 2 === 0 && d > 2);
    if (i >= 0) s.splice(i, 1, 2, (s[i] as number) / 2);
    else s.reverse();
  }
  return s;
}

/** A shape `shape` broadcasts to: some 1s stretched, perhaps a leading dim added. */
function broadcastOf(shape: readonly Dim[], pool: readonly Dim[], pick: (n: number) => number): Dim[] {
  const s = shape.map((d) => (d === 1 && pick(2) === 0 ? pool[pick(pool.length)]! : d));
  return pick(2) === 0 ? [pool[pick(pool.length)]!, ...s] : s;
}
