/**
 * The core op set. Each op is written down once here: its operands, its attributes, its shape
 * rule and — in `meaning` — exactly what it computes. `graph/interpret.ts` is the executable
 * form of these sentences; every pass and backend is judged against it.
 *
 * Conventions: shapes are row-major; axes may be negative (counted from the end); elementwise
 * binary ops broadcast NumPy-style (align trailing dims; a dim of 1 stretches); reductions keep
 * the reduced axis with size 1 so results broadcast back against their input. Arithmetic on i32
 * values wraps to 32 bits and division truncates toward zero, as in C.
 */
import { type DType, DTYPES, isDType } from './dtype.js';
import { type Dim, dimAdd, dimEq, dimSub, isStatic, productEq, shapeToString, dimToString } from './dim.js';
import { ShapeError } from './errors.js';
import { KilnError } from './errors.js';
import type { Node } from './graph.js';
import { type TensorType, normAxis, typeEq, typeToString } from './types.js';
import { validate } from './validate.js';

export const UNARY_OPS = ['neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'silu', 'gelu'] as const;
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'max', 'min', 'pow'] as const;
export const REDUCE_OPS = ['sum', 'mean', 'amax'] as const;
export const SOURCE_OPS = ['input', 'param', 'state', 'const', 'iota'] as const;
export const LAYOUT_OPS = ['reshape', 'transpose', 'slice', 'update_slice', 'concat', 'broadcast', 'gather'] as const;
export const SPECIAL_OPS = ['matmul', 'softmax', 'rmsnorm', 'rope', 'causal_mask', 'fused'] as const;
/** Ops training needs: a loss, the gradient of gather, dropout. None of them is elementwise. */
export const TRAINING_OPS = ['one_hot', 'scatter_add', 'cross_entropy', 'dropout_mask'] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = (typeof BINARY_OPS)[number];
export type ReduceOp = (typeof REDUCE_OPS)[number];
export type OpKind =
  | UnaryOp
  | BinaryOp
  | ReduceOp
  | (typeof SOURCE_OPS)[number]
  | (typeof LAYOUT_OPS)[number]
  | (typeof SPECIAL_OPS)[number]
  | (typeof TRAINING_OPS)[number];

/** Attribute kinds, so that JSON graphs can be checked and dims decoded on load. */
export type AttrKind = 'int' | 'float' | 'bool' | 'string' | 'dtype' | 'dim' | 'dims' | 'ints' | 'floats' | 'graph';
/**
 * The body of a fused op: a small graph whose `input` nodes are named `arg0`, `arg1`, … (the fused
 * op's operands, in order) and whose single output is the fused op's result.
 */
export interface FusedBody {
  readonly name: string;
  readonly nodes: readonly Node[];
  readonly outputs: readonly { readonly name: string; readonly value: number }[];
  readonly meta: Readonly<Record<string, unknown>>;
}

/** The operand index of a fused body's `input` node (`arg3` → 3); undefined for any other node. */
export function bodyArgIndex(n: Node | undefined): number | undefined {
  if (n?.op !== 'input') return undefined;
  const m = /^arg(\d+)$/.exec(String(n.attrs['name']));
  return m ? Number(m[1]) : undefined;
}

export type AttrValue = number | boolean | string | Dim | readonly Dim[] | readonly number[] | FusedBody;
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface OpDef {
  readonly kind: OpKind;
  /** Number of operands; 'variadic' means one or more. */
  readonly arity: number | 'variadic';
  readonly attrs: Readonly<Record<string, AttrKind>>;
  /** Attributes that may be left out. */
  readonly optional?: readonly string[];
  /** One precise sentence (or a few) of meaning; the interpreter implements exactly this. */
  readonly meaning: string;
  readonly infer: (inputs: readonly TensorType[], attrs: Attrs) => TensorType;
  readonly elementwise?: boolean;
}

// ---------------------------------------------------------------------------------------------
// shape helpers

function fail(code: ConstructorParameters<typeof ShapeError>[0], msg: string): never {
  throw new ShapeError(code, msg);
}

function axisOf(op: string, attrs: Attrs, rank: number, name = 'axis'): number {
  const raw = attrs[name] as number;
  const a = normAxis(raw, rank);
  if (a === undefined) fail('K1005', `${op}: ${name} ${raw} is out of range for rank ${rank}`);
  return a;
}

function sameDtype(op: string, ts: readonly TensorType[]): DType {
  const d = ts[0]!.dtype;
  for (const t of ts) if (t.dtype !== d) fail('K1006', `${op}: operand dtypes differ: ${ts.map(typeToString).join(', ')}`);
  return d;
}

function needFloat(op: string, t: TensorType): void {
  if (t.dtype !== 'f32') fail('K1006', `${op}: expects f32, got ${typeToString(t)}`);
}

/** NumPy broadcasting of two shapes; undefined where they do not broadcast. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[]): Dim[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (dimEq(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else return undefined;
  }
  return out;
}

function unary(kind: UnaryOp, meaning: string): OpDef {
  return {
    kind,
    arity: 1,
    attrs: {},
    meaning,
    elementwise: true,
    infer: ([x]) => {
      needFloat(kind, x!);
      return x!;
    },
  };
}

function binary(kind: BinaryOp, meaning: string): OpDef {
  return {
    kind,
    arity: 2,
    attrs: {},
    meaning: `${meaning} Operands broadcast.`,
    elementwise: true,
    infer: ([a, b]) => {
      const dtype = sameDtype(kind, [a!, b!]);
      const shape = broadcastShapes(a!.shape, b!.shape);
      if (!shape) fail('K1001', `${kind}: shapes ${shapeToString(a!.shape)} and ${shapeToString(b!.shape)} do not broadcast`);
      return { dtype, shape };
    },
  };
}

function reduce(kind: ReduceOp, meaning: string): OpDef {
  return {
    kind,
    arity: 1,
    attrs: { axis: 'int' },
    meaning: `${meaning} along \`axis\`; the axis stays with size 1.`,
    infer: ([x], attrs) => {
      needFloat(kind, x!);
      const ax = axisOf(kind, attrs, x!.shape.length);
      return { dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === ax ? 1 : d)) };
    },
  };
}

function source(kind: 'input' | 'param' | 'state', meaning: string): OpDef {
  return {
    kind,
    arity: 0,
    attrs: { name: 'string', dtype: 'dtype', shape: 'dims' },
    meaning,
    infer: (_, attrs) => ({ dtype: attrs['dtype'] as DType, shape: [...(attrs['shape'] as Dim[])] }),
  };
}

// ---------------------------------------------------------------------------------------------
// the table

const defs: OpDef[] = [
  source('input', 'A value supplied by the caller for each run, found by `name` (token ids, positions).'),
  source('param', 'A weight, bound once by `name` before running.'),
  source('state', 'A persistent buffer (e.g. a KV cache) read at the start of a step, found by `name`.'),
  {
    kind: 'const',
    arity: 0,
    attrs: { dtype: 'dtype', shape: 'dims', value: 'floats' },
    meaning: '`value` in row-major order; a single value fills the whole (static) shape.',
    infer: (_, attrs) => {
      const shape = attrs['shape'] as Dim[];
      const value = attrs['value'] as number[];
      if (!shape.every(isStatic)) fail('K1007', `const: shape ${shapeToString(shape)} must be static`);
      const n = shape.reduce<number>((a, d) => a * (d as number), 1);
      if (value.length !== 1 && value.length !== n) fail('K1007', `const: ${value.length} values for shape ${shapeToString(shape)} (${n} elements)`);
      return { dtype: attrs['dtype'] as DType, shape: [...shape] };
    },
  },
  {
    kind: 'iota',
    arity: 0,
    attrs: { dtype: 'dtype', shape: 'dims', axis: 'int', start: 'dim' },
    meaning: 'out[i₀,…,iₙ] = start + i_axis: counts along `axis` from `start` (a dim, e.g. `pos`).',
    infer: (_, attrs) => {
      const shape = attrs['shape'] as Dim[];
      axisOf('iota', attrs, shape.length);
      return { dtype: attrs['dtype'] as DType, shape: [...shape] };
    },
  },

  unary('neg', 'out = −x.'),
  unary('abs', 'out = |x|.'),
  unary('exp', 'out = eˣ.'),
  unary('log', 'out = ln x (NaN for x < 0, −∞ at 0).'),
  unary('sqrt', 'out = √x.'),
  unary('rsqrt', 'out = 1/√x.'),
  unary('sin', 'out = sin x (radians).'),
  unary('cos', 'out = cos x (radians).'),
  unary('tanh', 'out = tanh x.'),
  unary('sigmoid', 'out = 1/(1 + e⁻ˣ).'),
  unary('relu', 'out = max(x, 0).'),
  unary('silu', 'out = x·sigmoid(x).'),
  unary('gelu', 'out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — the tanh form, as GPT-2 and llama.cpp compute it.'),

  binary('add', 'out = a + b.'),
  binary('sub', 'out = a − b.'),
  binary('mul', 'out = a · b.'),
  binary('div', 'out = a / b.'),
  binary('max', 'out = max(a, b).'),
  binary('min', 'out = min(a, b).'),
  binary('pow', 'out = a^b (Math.pow).'),

  reduce('sum', 'out = Σ x'),
  reduce('mean', 'out = (Σ x) / n'),
  reduce('amax', 'out = max x'),

  {
    kind: 'matmul',
    arity: 2,
    attrs: { transB: 'bool' },
    meaning:
      'a[…, M, K] · b[…, K, N] → [broadcast(…), M, N]: out[…, m, n] = Σₖ a[…, m, k]·b[…, k, n]. With `transB`, b is [… , N, K] and read as its transpose (how [out, in] weight matrices are stored). Batch dims broadcast. Rank ≥ 2 for both.',
    infer: ([a, b], attrs) => {
      sameDtype('matmul', [a!, b!]);
      needFloat('matmul', a!);
      if (a!.shape.length < 2 || b!.shape.length < 2)
        fail('K1002', `matmul: operands need rank ≥ 2, got ${shapeToString(a!.shape)} and ${shapeToString(b!.shape)}`);
      const tb = attrs['transB'] === true;
      const [m, k] = a!.shape.slice(-2) as [Dim, Dim];
      const bk = b!.shape.at(tb ? -1 : -2)!;
      const n = b!.shape.at(tb ? -2 : -1)!;
      if (!dimEq(k, bk))
        fail('K1003', `matmul inner dims differ: ${shapeToString(a!.shape)} @ ${shapeToString(b!.shape)}${tb ? 'ᵀ' : ''} (${dimToString(k)} vs ${dimToString(bk)})`);
      const batch = broadcastShapes(a!.shape.slice(0, -2), b!.shape.slice(0, -2));
      if (!batch) fail('K1001', `matmul: batch dims of ${shapeToString(a!.shape)} and ${shapeToString(b!.shape)} do not broadcast`);
      return { dtype: a!.dtype, shape: [...batch, m, n] };
    },
  },
  {
    kind: 'reshape',
    arity: 1,
    attrs: { shape: 'dims' },
    meaning: 'The same elements in the same row-major order, viewed with a new shape of equal element count.',
    infer: ([x], attrs) => {
      const shape = attrs['shape'] as Dim[];
      if (!productEq(x!.shape, shape))
        fail('K1004', `reshape: ${shapeToString(x!.shape)} cannot become ${shapeToString(shape)}: element counts differ`);
      return { dtype: x!.dtype, shape: [...shape] };
    },
  },
  {
    kind: 'transpose',
    arity: 1,
    attrs: { perm: 'ints' },
    meaning: 'out[i_perm[0], …] axes permuted: out.shape[j] = x.shape[perm[j]], out[…, i_j, …] = x[…] with axis perm[j] indexed by i_j.',
    infer: ([x], attrs) => {
      const perm = attrs['perm'] as number[];
      const r = x!.shape.length;
      const ok = perm.length === r && [...perm].sort((p, q) => p - q).every((p, i) => p === i);
      if (!ok) fail('K1007', `transpose: perm [${perm.join(', ')}] is not a permutation of the ${r} axes of ${shapeToString(x!.shape)}`);
      return { dtype: x!.dtype, shape: perm.map((p) => x!.shape[p]!) };
    },
  },
  {
    kind: 'slice',
    arity: 1,
    attrs: { axis: 'int', start: 'dim', end: 'dim' },
    meaning: 'The elements with start ≤ index < end along `axis` (bounds may be symbolic).',
    infer: ([x], attrs) => {
      const ax = axisOf('slice', attrs, x!.shape.length);
      const start = attrs['start'] as Dim;
      const end = attrs['end'] as Dim;
      const len = dimSub(end, start);
      const size = x!.shape[ax]!;
      if (isStatic(len) && len < 0) fail('K1009', `slice: end ${dimToString(end)} is before start ${dimToString(start)}`);
      if (isStatic(size) && isStatic(end) && end > size)
        fail('K1009', `slice: end ${dimToString(end)} is past the size ${size} of axis ${ax} of ${shapeToString(x!.shape)}`);
      return { dtype: x!.dtype, shape: x!.shape.map((d, i) => (i === ax ? len : d)) };
    },
  },
  {
    kind: 'update_slice',
    arity: 2,
    attrs: { axis: 'int', start: 'dim' },
    meaning:
      'base with update written over it along `axis` at [start, start + update.shape[axis]); all other dims equal. How a step writes new keys and values into a KV cache (backends do it in place when base is state).',
    infer: ([base, upd], attrs) => {
      sameDtype('update_slice', [base!, upd!]);
      const r = base!.shape.length;
      const ax = axisOf('update_slice', attrs, r);
      if (upd!.shape.length !== r) fail('K1002', `update_slice: ranks differ: ${shapeToString(base!.shape)} and ${shapeToString(upd!.shape)}`);
      upd!.shape.forEach((d, i) => {
        if (i !== ax && !dimEq(d, base!.shape[i]!))
          fail('K1008', `update_slice: dim ${i} differs: ${shapeToString(base!.shape)} and ${shapeToString(upd!.shape)}`);
      });
      const end = dimAdd(attrs['start'] as Dim, upd!.shape[ax]!);
      const size = base!.shape[ax]!;
      if (isStatic(size) && isStatic(end) && end > size)
        fail('K1009', `update_slice: end ${dimToString(end)} is past the size ${size} of axis ${ax} of ${shapeToString(base!.shape)}`);
      return base!;
    },
  },
  {
    kind: 'concat',
    arity: 'variadic',
    attrs: { axis: 'int' },
    meaning: 'Operands joined along `axis` in order; all other dims equal.',
    infer: (xs, attrs) => {
      const dtype = sameDtype('concat', xs);
      const r = xs[0]!.shape.length;
      const ax = axisOf('concat', attrs, r);
      let len: Dim = 0;
      for (const t of xs) {
        if (t.shape.length !== r) fail('K1002', `concat: ranks differ: ${xs.map((t) => shapeToString(t.shape)).join(', ')}`);
        t.shape.forEach((d, i) => {
          if (i !== ax && !dimEq(d, xs[0]!.shape[i]!))
            fail('K1008', `concat: dim ${i} differs: ${xs.map((t) => shapeToString(t.shape)).join(', ')}`);
        });
        len = dimAdd(len, t.shape[ax]!);
      }
      return { dtype, shape: xs[0]!.shape.map((d, i) => (i === ax ? len : d)) };
    },
  },
  {
    kind: 'broadcast',
    arity: 1,
    attrs: { shape: 'dims' },
    meaning: 'x stretched to `shape` by NumPy broadcasting (size-1 and missing leading dims repeat).',
    infer: ([x], attrs) => {
      const shape = attrs['shape'] as Dim[];
      const b = broadcastShapes(x!.shape, shape);
      if (!b || !b.every((d, i) => dimEq(d, shape[i]!)) || b.length !== shape.length)
        fail('K1001', `broadcast: ${shapeToString(x!.shape)} does not broadcast to ${shapeToString(shape)}`);
      return { dtype: x!.dtype, shape: [...shape] };
    },
  },
  {
    kind: 'gather',
    arity: 2,
    attrs: {},
    meaning: 'table[V, …rest], indices (i32)[…idx] → […idx, …rest]: out[i, …] = table[indices[i], …]. An index outside [0, V) is an error.',
    infer: ([table, idx]) => {
      if (idx!.dtype !== 'i32') fail('K1006', `gather: indices must be i32, got ${typeToString(idx!)}`);
      if (table!.shape.length < 1) fail('K1002', 'gather: table needs rank ≥ 1');
      return { dtype: table!.dtype, shape: [...idx!.shape, ...table!.shape.slice(1)] };
    },
  },
  {
    kind: 'softmax',
    arity: 1,
    attrs: { axis: 'int' },
    meaning: 'out = exp(x − max x) / Σ exp(x − max x) along `axis`. A row of all −∞ gives NaN (never produced by a causal mask, which keeps the diagonal).',
    infer: ([x], attrs) => {
      needFloat('softmax', x!);
      axisOf('softmax', attrs, x!.shape.length);
      return x!;
    },
  },
  {
    kind: 'rmsnorm',
    arity: 2,
    attrs: { eps: 'float' },
    meaning: 'x[…, D], w[D]: out = x / √(mean(x²) + eps) · w, the mean over the last axis.',
    infer: ([x, w], attrs) => {
      needFloat('rmsnorm', x!);
      needFloat('rmsnorm (weight)', w!);
      const eps = attrs['eps'] as number;
      if (!(eps >= 0 && Number.isFinite(eps))) fail('K1007', `rmsnorm: eps must be a finite number ≥ 0, got ${eps}`);
      const d = x!.shape.at(-1);
      if (d === undefined || w!.shape.length !== 1 || !dimEq(w!.shape[0]!, d))
        fail('K1008', `rmsnorm: weight ${shapeToString(w!.shape)} must be [${d === undefined ? '?' : dimToString(d)}], the last dim of ${shapeToString(x!.shape)}`);
      return x!;
    },
  },
  {
    kind: 'rope',
    arity: 1,
    attrs: { base: 'float', layout: 'string', offset: 'dim' },
    meaning:
      'x[S, H, D] rotary position embedding. Token s has position p = offset + s; pair i (0 ≤ i < D/2) rotates by angle p·base^(−2i/D): (a, b) → (a·cos − b·sin, a·sin + b·cos). `layout` picks the pairs: "interleaved" pairs (x[2i], x[2i+1]) (Meta, GGUF, llama2.c); "half" pairs (x[i], x[i + D/2]) (Hugging Face, NeoX).',
    infer: ([x], attrs) => {
      needFloat('rope', x!);
      if (x!.shape.length !== 3) fail('K1002', `rope: expects [seq, heads, headDim], got ${shapeToString(x!.shape)}`);
      const d = x!.shape[2]!;
      if (!isStatic(d) || d % 2 !== 0) fail('K1008', `rope: head dim ${dimToString(d)} must be a static even number`);
      const layout = attrs['layout'];
      if (layout !== 'interleaved' && layout !== 'half') fail('K1007', `rope: layout must be "interleaved" or "half", got ${JSON.stringify(layout)}`);
      return x!;
    },
  },
  {
    kind: 'causal_mask',
    arity: 1,
    attrs: { offset: 'dim' },
    meaning: 'x[…, Q, K]: out[…, i, j] = −∞ where j > i + offset, else x[…, i, j]. Query i sits at key position i + offset.',
    infer: ([x]) => {
      needFloat('causal_mask', x!);
      if (x!.shape.length < 2) fail('K1002', `causal_mask: expects rank ≥ 2, got ${shapeToString(x!.shape)}`);
      return x!;
    },
  },
  {
    kind: 'one_hot',
    arity: 1,
    attrs: { depth: 'dim' },
    meaning:
      'indices (i32)[…] → f32[…, depth]: out[…, v] = 1 if indices[…] = v, else 0. An index outside [0, depth) gives a row of zeros, not an error (a position the loss ignores). Not differentiable: its operand is an integer.',
    infer: ([idx], attrs) => {
      if (idx!.dtype !== 'i32') fail('K1006', `one_hot: indices must be i32, got ${typeToString(idx!)}`);
      const depth = attrs['depth'] as Dim;
      if (isStatic(depth) && depth < 1) fail('K1007', `one_hot: depth must be at least 1, got ${depth}`);
      return { dtype: 'f32', shape: [...idx!.shape, depth] };
    },
  },
  {
    kind: 'scatter_add',
    arity: 2,
    attrs: { rows: 'dim' },
    meaning:
      'indices (i32)[…idx], updates f32[…idx, …rest] → f32[rows, …rest]: out[v, …] = Σ updates[i, …] over the positions i (of …idx) with indices[i] = v; a row no index names is 0, and repeated indices add up. The gradient of `gather` with respect to its table. An index outside [0, rows) is an error (as in gather).',
    infer: ([idx, upd], attrs) => {
      if (idx!.dtype !== 'i32') fail('K1006', `scatter_add: indices must be i32, got ${typeToString(idx!)}`);
      needFloat('scatter_add (updates)', upd!);
      const rows = attrs['rows'] as Dim;
      if (isStatic(rows) && rows < 1) fail('K1007', `scatter_add: rows must be at least 1, got ${rows}`);
      const k = idx!.shape.length;
      if (upd!.shape.length < k || !idx!.shape.every((d, i) => dimEq(d, upd!.shape[i]!)))
        fail('K1008', `scatter_add: updates ${typeToString(upd!)} must have the shape of indices ${shapeToString(idx!.shape)} followed by the rest`);
      return { dtype: 'f32', shape: [rows, ...upd!.shape.slice(k)] };
    },
  },
  {
    kind: 'cross_entropy',
    arity: 2,
    attrs: {},
    meaning:
      'logits f32[…, V], targets (i32)[…] (logits\' shape without its last axis) → f32[…]: out[…] = logsumexp(logits[…, :]) − logits[…, targets[…]], computed stably: m + ln Σ exp(logits − m) with m the row\'s max, so huge logits stay finite. A target outside [0, V) is an error. Its gradient with respect to the logits is (softmax(logits) − one_hot(targets, V)) · g[…, None].',
    infer: ([logits, targets]) => {
      needFloat('cross_entropy (logits)', logits!);
      if (targets!.dtype !== 'i32') fail('K1006', `cross_entropy: targets must be i32, got ${typeToString(targets!)}`);
      if (logits!.shape.length < 1) fail('K1002', `cross_entropy: logits need rank ≥ 1 ([…, classes]), got ${shapeToString(logits!.shape)}`);
      const lead = logits!.shape.slice(0, -1);
      if (targets!.shape.length !== lead.length || !lead.every((d, i) => dimEq(d, targets!.shape[i]!)))
        fail('K1008', `cross_entropy: targets ${typeToString(targets!)} must have the shape of logits ${typeToString(logits!)} without its last axis, ${shapeToString(lead)}`);
      return { dtype: 'f32', shape: lead };
    },
  },
  {
    kind: 'dropout_mask',
    arity: 1,
    attrs: { shape: 'dims', p: 'float', stream: 'int' },
    meaning:
      'key (i32)[2] = [seed, step] (a runtime input) → f32[shape]: element i (row-major) is 1/(1 − p) if u ≥ p, else 0, where u = (h >>> 8) / 2²⁴ ∈ [0, 1) and h = hash(seed, step, stream, i), all in uint32 arithmetic (Math.imul and >>> 0; seed and step taken as their two\'s-complement bits): fmix(h) is murmur3\'s fmix32 (h ^= h >>> 16; h = h·0x85ebca6b; h ^= h >>> 13; h = h·0xc2b2ae35; h ^= h >>> 16); h = fmix(i ^ 0x9e3779b9); h = fmix(h ^ stream·0x632be5ab); h = fmix(h ^ step); h = fmix(h ^ seed). u ≥ p is decided exactly, as the integer comparison (h >>> 8) ≥ ⌈p·2²⁴⌉ (graph/random.ts). 0 ≤ p < 1; `stream` (0 ≤ stream < 2³¹) tells apart the masks drawn from one key. Not differentiable: dropout(x) = x · mask.',
    infer: ([key], attrs) => {
      if (key!.dtype !== 'i32' || key!.shape.length !== 1 || !dimEq(key!.shape[0]!, 2))
        fail(key!.dtype !== 'i32' ? 'K1006' : 'K1008', `dropout_mask: key must be i32[2] ([seed, step]), got ${typeToString(key!)}`);
      const p = attrs['p'] as number;
      if (!(p >= 0 && p < 1)) fail('K1007', `dropout_mask: p must be in [0, 1), got ${p}`);
      const stream = attrs['stream'] as number;
      if (!(Number.isInteger(stream) && stream >= 0 && stream <= 0x7fffffff))
        fail('K1007', `dropout_mask: stream must be an integer in [0, 2147483647], got ${stream}`);
      return { dtype: 'f32', shape: [...(attrs['shape'] as Dim[])] };
    },
  },
  {
    kind: 'fused',
    arity: 'variadic',
    attrs: { pattern: 'string', body: 'graph' },
    meaning:
      'Made only by passes: the value of `body` (a graph whose inputs arg0, arg1, … are the operands) computed as one kernel. `pattern` names the kernel (rope_qk, swiglu, elementwise); the body is the decomposition into core ops that gives it its meaning.',
    infer: (xs, attrs) => {
      const body = attrs['body'] as FusedBody;
      try {
        validate(body);
      } catch (e) {
        if (e instanceof KilnError) fail('K1015', `fused ${String(attrs['pattern'])}: body: ${e.message}`);
        throw e;
      }
      const args = body.nodes.filter((n) => n.op === 'input');
      if (args.length !== xs.length) fail('K1015', `fused: body takes ${args.length} operands, got ${xs.length}`);
      for (const n of args) {
        const i = /^arg(\d+)$/.exec(String(n.attrs['name']))?.[1];
        const t = i === undefined ? undefined : xs[Number(i)];
        if (!t) fail('K1015', `fused: body input '${String(n.attrs['name'])}' is not arg0…arg${xs.length - 1}`);
        if (!typeEq(t, n.type)) fail('K1006', `fused: operand ${i} is ${typeToString(t)}, body expects ${typeToString(n.type)}`);
      }
      if (body.outputs.length !== 1) fail('K1015', `fused: body must have one output, has ${body.outputs.length}`);
      return body.nodes.find((n) => n.id === body.outputs[0]!.value)!.type;
    },
  },
];

export const OPS: Readonly<Record<OpKind, OpDef>> = Object.fromEntries(defs.map((d) => [d.kind, d])) as Record<OpKind, OpDef>;

export function isOpKind(s: unknown): s is OpKind {
  return typeof s === 'string' && Object.hasOwn(OPS, s);
}

export function isElementwise(kind: OpKind): boolean {
  return OPS[kind].elementwise === true;
}

/** What is wrong with a value that fails `attrMatches`, to follow "attribute 'k'" in a message a user reads. */
export function attrProblem(kind: AttrKind, v: unknown): string {
  if (kind === 'dims' && Array.isArray(v)) {
    const bad = v.find((d) => typeof d !== 'object' && !(typeof d === 'number' && Number.isInteger(d) && d >= 0));
    const shown = v.map((d) => (typeof d === 'object' && d !== null && 'terms' in d ? dimToString(d as Dim) : String(d))).join(', ');
    if (bad !== undefined) return `has ${String(bad)} in [${shown}]: a size must be a whole number or a named dim`;
  }
  if (kind === 'dim' && typeof v === 'number') return `must be an integer or a named dim, got ${v}`;
  if (kind === 'dtype') return `should be one of ${DTYPES.join(', ')}, got ${JSON.stringify(v)}`;
  return `should be ${kind}, got ${JSON.stringify(v)}`;
}

/** Check an attribute value against its declared kind (used by the JSON reader and the validator). */
export function attrMatches(kind: AttrKind, v: unknown): boolean {
  const isDimV = (d: unknown) =>
    (typeof d === 'number' && Number.isInteger(d)) ||
    (typeof d === 'object' && d !== null && 'terms' in d && 'offset' in d);
  // a shape's static sizes are not negative: −4 · −16 would pass an element-count check by accident
  // (zero is a size, of an empty tensor; the DSL asks for positive ones)
  const isSizeV = (d: unknown) => (typeof d === 'number' ? Number.isInteger(d) && d >= 0 : isDimV(d));
  switch (kind) {
    case 'int':
      return typeof v === 'number' && Number.isInteger(v);
    case 'float':
      return typeof v === 'number';
    case 'bool':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string';
    case 'dtype':
      return isDType(v);
    case 'dim':
      return isDimV(v);
    case 'dims':
      return Array.isArray(v) && v.every(isSizeV);
    case 'ints':
      return Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isInteger(x));
    case 'floats':
      return Array.isArray(v) && v.every((x) => typeof x === 'number');
    case 'graph':
      return typeof v === 'object' && v !== null && Array.isArray((v as FusedBody).nodes) && Array.isArray((v as FusedBody).outputs);
  }
}
