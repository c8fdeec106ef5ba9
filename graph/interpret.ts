/**
 * The reference interpreter: the executable form of every `OPS[kind].meaning` in graph/ops.ts.
 * Float64, naive, one case per op. Every pass and backend is judged against it, so it favours
 * being obviously right over being fast.
 *
 * i32 values stay integers: an i32 result is truncated toward zero and wrapped to 32 bits, as
 * integer arithmetic on every backend does (so i32 `div` truncates like C).
 */
import { type Dim, dimToString, evalDim, shapeToString } from './dim.js';
import { InternalError, KilnError } from './errors.js';
import type { Graph, Node } from './graph.js';
import { broadcastShapes, type BinaryOp, type FusedBody, type UnaryOp } from './ops.js';
import { dropoutBits, dropoutThreshold } from './random.js';
import { type HostTensor, numelOf } from './tensor.js';
import { normAxis } from './types.js';

export interface Bindings {
  inputs?: Record<string, HostTensor>;
  params?: Record<string, HostTensor>;
  state?: Record<string, HostTensor>;
  /** Values of dim symbols (`seq`, `pos`); those left out are inferred from the bound tensors. */
  symbols?: Record<string, number>;
}

type Env = Record<string, number>;

const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  relu: (x) => Math.max(x, 0),
  silu: (x) => x / (1 + Math.exp(-x)),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
};

const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: Math.max,
  min: Math.min,
  pow: Math.pow,
};

// ---------------------------------------------------------------------------------------------
// index helpers

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, k = 1; i >= 0; k *= shape[i]!, i--) s[i] = k;
  return s;
}

/** Call `fn` with every multi-index of `shape` in row-major order, and its flat position. */
function forEachIndex(shape: readonly number[], fn: (idx: number[], flat: number) => void): void {
  const n = numelOf(shape);
  const idx = shape.map(() => 0);
  for (let f = 0; f < n; f++) {
    fn(idx, f);
    for (let i = shape.length - 1; i >= 0 && ++idx[i]! === shape[i]; i--) idx[i] = 0;
  }
}

/** Flat position in a tensor of `shape` read at the trailing-aligned `idx`, size-1 dims repeating. */
function bcastOffset(shape: readonly number[], idx: readonly number[]): number {
  const s = strides(shape);
  const lead = idx.length - shape.length;
  let off = 0;
  for (let i = 0; i < shape.length; i++) if (shape[i] !== 1) off += idx[lead + i]! * s[i]!;
  return off;
}

/** Apply `fn` to every lane along `axis` (the values with all other indices fixed); fn returns the new lane. */
function lanes(x: HostTensor, axis: number, outLen: number, fn: (lane: number[]) => number[]): HostTensor {
  const shape = x.shape.map((d, i) => (i === axis ? outLen : d));
  const data = new Float64Array(numelOf(shape));
  const [xs, os] = [strides(x.shape), strides(shape)];
  forEachIndex(x.shape.map((d, i) => (i === axis ? 1 : d)), (idx) => {
    const base = idx.reduce((o, v, i) => o + v * xs[i]!, 0);
    const obase = idx.reduce((o, v, i) => o + v * os[i]!, 0);
    const lane = Array.from({ length: x.shape[axis]! }, (_, k) => x.data[base + k * xs[axis]!]!);
    fn(lane).forEach((v, k) => (data[obase + k * os[axis]!] = v));
  });
  return { dtype: x.dtype, shape, data };
}

function tensor(dtype: HostTensor['dtype'], shape: number[], fill: (idx: number[], flat: number) => number): HostTensor {
  const data = new Float64Array(numelOf(shape));
  forEachIndex(shape, (idx, f) => (data[f] = fill(idx, f)));
  return { dtype, shape, data };
}

// ---------------------------------------------------------------------------------------------
// binding sources and symbols

const SOURCE_KIND = { input: 'inputs', param: 'params', state: 'state' } as const;

function sourceOf(n: Node, b: Bindings): HostTensor | undefined {
  const kind = SOURCE_KIND[n.op as keyof typeof SOURCE_KIND];
  return kind && b[kind]?.[n.attrs['name'] as string];
}

/** Bind symbols from `b.symbols`, then from dims of bound tensors that are exactly one symbol; check every dim. */
function bindSymbols(g: Graph, b: Bindings): Env {
  const env: Env = { ...b.symbols };
  const sources = g.nodes.filter((n) => Object.hasOwn(SOURCE_KIND, n.op));
  const what = (n: Node) => `${n.op} '${String(n.attrs['name'])}'`;
  const missing = sources.filter((n) => !sourceOf(n, b)).map(what);
  if (missing.length) throw new KilnError('K1017', `graph ${g.name}: no value given for ${missing.join(', ')}`);
  for (const n of sources) {
    const t = sourceOf(n, b)!;
    const given = `[${t.shape.join(', ')}]`;
    if (t.dtype !== n.type.dtype) throw new KilnError('K1017', `${what(n)}: expected dtype ${n.type.dtype}, given ${t.dtype}`);
    if (t.shape.length !== n.type.shape.length)
      throw new KilnError('K1017', `${what(n)}: expected rank ${n.type.shape.length} ${shapeToString(n.type.shape)}, given ${given}`);
    if (t.data.length !== numelOf(t.shape)) throw new KilnError('K1017', `${what(n)}: ${t.data.length} values for shape ${given}`);
    n.type.shape.forEach((d, i) => {
      const s = soleSymbol(d);
      if (s !== undefined) env[s] ??= t.shape[i]!;
    });
  }
  for (const n of sources)
    n.type.shape.forEach((d, i) => {
      const want = evalIn(env, d, what(n));
      const given = sourceOf(n, b)!.shape[i];
      const expected = typeof d === 'number' ? `${d}` : `${dimToString(d)} = ${want}`;
      if (want !== given) throw new KilnError('K1017', `${what(n)}: dim ${i} should be ${expected}, given ${given}`);
    });
  return env;
}

/** The symbol a dim is exactly (`seq`, not `seq + 1` or `2*seq`), if any. */
function soleSymbol(d: Dim): string | undefined {
  if (typeof d === 'number' || d.offset !== 0) return undefined;
  const ks = Object.keys(d.terms);
  return ks.length === 1 && d.terms[ks[0]!] === 1 ? ks[0] : undefined;
}

function evalIn(env: Env, d: Dim, where: string): number {
  try {
    return evalDim(d, env);
  } catch {
    const free = typeof d === 'number' ? [] : Object.keys(d.terms).filter((s) => env[s] === undefined);
    throw new KilnError('K1017', `${where}: no value for dim symbol '${free[0]}' (bind it in symbols or through an input's shape)`);
  }
}

// ---------------------------------------------------------------------------------------------
// the ops

function evalNode(n: Node, xs: HostTensor[], b: Bindings, env: Env): HostTensor {
  const a = n.attrs;
  const x = xs[0]!;
  const where = `%${n.id}${n.scope ? ` (${n.scope})` : ''} ${n.op}`;
  const dim = (d: Dim) => evalIn(env, d, where);
  const dims = () => (a['shape'] as Dim[]).map(dim);
  const axis = () => normAxis(a['axis'] as number, (n.op === 'iota' ? dims() : x.shape).length)!;
  const dtype = n.type.dtype;

  if (Object.hasOwn(UNARY, n.op)) return { dtype, shape: x.shape, data: x.data.map(UNARY[n.op as UnaryOp]) };
  if (Object.hasOwn(BINARY, n.op)) {
    const [p, q] = xs as [HostTensor, HostTensor];
    const shape = broadcastShapes(p.shape, q.shape) as number[];
    const f = dtype === 'i32' && n.op === 'mul' ? Math.imul : BINARY[n.op as BinaryOp];
    return tensor(dtype, shape, (idx) => f(p.data[bcastOffset(p.shape, idx)]!, q.data[bcastOffset(q.shape, idx)]!));
  }
  switch (n.op) {
    case 'input':
    case 'param':
    case 'state':
      return sourceOf(n, b)!;
    case 'const': {
      const v = a['value'] as number[];
      return tensor(dtype, dims(), (_, f) => (v.length === 1 ? v[0]! : v[f]!));
    }
    case 'iota': {
      const [ax, start] = [axis(), dim(a['start'] as Dim)];
      return tensor(dtype, dims(), (idx) => start + idx[ax]!);
    }
    case 'sum':
      return lanes(x, axis(), 1, (l) => [l.reduce((s, v) => s + v, 0)]);
    case 'mean':
      return lanes(x, axis(), 1, (l) => [l.reduce((s, v) => s + v, 0) / l.length]);
    case 'amax':
      return lanes(x, axis(), 1, (l) => [l.reduce((m, v) => Math.max(m, v), -Infinity)]);
    case 'matmul': {
      const y = xs[1]!;
      const tb = a['transB'] === true;
      const [M, K] = x.shape.slice(-2) as [number, number];
      const N = y.shape.at(tb ? -2 : -1)!;
      const [ab, bb] = [x.shape.slice(0, -2), y.shape.slice(0, -2)];
      const batch = broadcastShapes(ab, bb) as number[];
      const out = new Float64Array(numelOf(batch) * M * N);
      forEachIndex(batch, (idx, f) => {
        const [ao, bo] = [bcastOffset(ab, idx) * M * K, bcastOffset(bb, idx) * K * N];
        for (let m = 0; m < M; m++)
          for (let j = 0; j < N; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += x.data[ao + m * K + k]! * y.data[bo + (tb ? j * K + k : k * N + j)]!;
            out[(f * M + m) * N + j] = s;
          }
      });
      return { dtype, shape: [...batch, M, N], data: out };
    }
    case 'reshape':
      return { dtype, shape: dims(), data: x.data };
    case 'transpose': {
      const perm = a['perm'] as number[];
      const xsr = strides(x.shape);
      return tensor(dtype, perm.map((p) => x.shape[p]!), (idx) => x.data[idx.reduce((o, v, j) => o + v * xsr[perm[j]!]!, 0)]!);
    }
    case 'slice': {
      const [ax, start, end] = [axis(), dim(a['start'] as Dim), dim(a['end'] as Dim)];
      if (start < 0 || end < start || end > x.shape[ax]!)
        throw new KilnError('K1009', `${where}: [${start}, ${end}) is outside axis ${ax} of size ${x.shape[ax]}`, n.loc);
      const xsr = strides(x.shape);
      const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
      return tensor(dtype, shape, (idx) => x.data[idx.reduce((o, v, i) => o + (i === ax ? v + start : v) * xsr[i]!, 0)]!);
    }
    case 'update_slice': {
      const [ax, start, u] = [axis(), dim(a['start'] as Dim), xs[1]!];
      if (start < 0 || start + u.shape[ax]! > x.shape[ax]!)
        throw new KilnError('K1009', `${where}: [${start}, ${start + u.shape[ax]!}) is outside axis ${ax} of size ${x.shape[ax]}`, n.loc);
      const out = Float64Array.from(x.data);
      const os = strides(x.shape);
      forEachIndex(u.shape, (idx, f) => (out[idx.reduce((o, v, i) => o + (i === ax ? v + start : v) * os[i]!, 0)] = u.data[f]!));
      return { dtype, shape: x.shape, data: out };
    }
    case 'fused': {
      // A fused op means exactly its body: run the body on the operands.
      const body = a['body'] as FusedBody;
      const inputs = Object.fromEntries(xs.map((t, i) => [`arg${i}`, t]));
      return Object.values(interpret(body, { inputs, symbols: env }))[0]!;
    }
    case 'concat': {
      const ax = axis();
      const shape = x.shape.map((d, i) => (i === ax ? xs.reduce((s, t) => s + t.shape[ax]!, 0) : d));
      const out = new Float64Array(numelOf(shape));
      const os = strides(shape);
      let at = 0;
      for (const t of xs) {
        forEachIndex(t.shape, (idx, f) => (out[idx.reduce((o, v, i) => o + (i === ax ? v + at : v) * os[i]!, 0)] = t.data[f]!));
        at += t.shape[ax]!;
      }
      return { dtype, shape, data: out };
    }
    case 'broadcast':
      return tensor(dtype, dims(), (idx) => x.data[bcastOffset(x.shape, idx)]!);
    case 'gather': {
      const [table, ids] = xs as [HostTensor, HostTensor];
      const V = table.shape[0]!;
      const row = numelOf(table.shape.slice(1));
      const out = new Float64Array(ids.data.length * row);
      ids.data.forEach((v, i) => {
        if (!(Number.isInteger(v) && v >= 0 && v < V))
          throw new KilnError('K1017', `${where}: index ${v} at position ${i} is outside [0, ${V})`, n.loc);
        out.set(table.data.subarray(v * row, (v + 1) * row), i * row);
      });
      return { dtype, shape: [...ids.shape, ...table.shape.slice(1)], data: out };
    }
    case 'softmax':
      return lanes(x, axis(), x.shape[axis()]!, (l) => {
        const m = l.reduce((p, v) => Math.max(p, v), -Infinity);
        const e = l.map((v) => Math.exp(v - m));
        const s = e.reduce((p, q) => p + q, 0);
        return e.map((v) => v / s);
      });
    case 'rmsnorm': {
      const w = xs[1]!.data;
      const eps = a['eps'] as number;
      return lanes(x, x.shape.length - 1, w.length, (l) => {
        const r = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length + eps);
        return l.map((v, i) => (v / r) * w[i]!);
      });
    }
    case 'rope': {
      const [S, H, D] = x.shape as [number, number, number];
      const [offset, base, half] = [dim(a['offset'] as Dim), a['base'] as number, a['layout'] === 'half'];
      const out = new Float64Array(x.data.length);
      for (let s = 0; s < S; s++)
        for (let h = 0; h < H; h++)
          for (let i = 0; i < D / 2; i++) {
            const angle = (offset + s) * Math.pow(base, (-2 * i) / D);
            const row = (s * H + h) * D;
            const [ia, ib] = half ? [row + i, row + i + D / 2] : [row + 2 * i, row + 2 * i + 1];
            const [p, q] = [x.data[ia]!, x.data[ib]!];
            out[ia] = p * Math.cos(angle) - q * Math.sin(angle);
            out[ib] = p * Math.sin(angle) + q * Math.cos(angle);
          }
      return { dtype, shape: x.shape, data: out };
    }
    case 'causal_mask': {
      const offset = dim(a['offset'] as Dim);
      const r = x.shape.length;
      return tensor(dtype, x.shape, (idx, f) => (idx[r - 1]! > idx[r - 2]! + offset ? -Infinity : x.data[f]!));
    }
    case 'one_hot': {
      const depth = dim(a['depth'] as Dim);
      const out = new Float64Array(x.data.length * depth);
      x.data.forEach((v, i) => {
        if (Number.isInteger(v) && v >= 0 && v < depth) out[i * depth + v] = 1;
      });
      return { dtype, shape: [...x.shape, depth], data: out };
    }
    case 'scatter_add': {
      const [ids, upd] = xs as [HostTensor, HostTensor];
      const rows = dim(a['rows'] as Dim);
      const rest = upd.shape.slice(ids.shape.length);
      const row = numelOf(rest);
      const out = new Float64Array(rows * row);
      ids.data.forEach((v, i) => {
        if (!(Number.isInteger(v) && v >= 0 && v < rows))
          throw new KilnError('K1017', `${where}: index ${v} at position ${i} is outside [0, ${rows})`, n.loc);
        for (let k = 0; k < row; k++) out[v * row + k]! += upd.data[i * row + k]!;
      });
      return { dtype, shape: [rows, ...rest], data: out };
    }
    case 'cross_entropy': {
      const targets = xs[1]!;
      const V = x.shape.at(-1)!;
      const out = new Float64Array(targets.data.length);
      targets.data.forEach((t, r) => {
        if (!(Number.isInteger(t) && t >= 0 && t < V))
          throw new KilnError('K1017', `${where}: target ${t} at position ${r} is outside [0, ${V})`, n.loc);
        const lane = x.data.subarray(r * V, (r + 1) * V);
        const m = lane.reduce((p, v) => Math.max(p, v), -Infinity);
        const s = lane.reduce((p, v) => p + Math.exp(v - m), 0);
        out[r] = m + Math.log(s) - lane[t]!;
      });
      return { dtype, shape: targets.shape, data: out };
    }
    case 'dropout_mask': {
      const [seed, step] = [x.data[0]!, x.data[1]!];
      const [p, stream] = [a['p'] as number, a['stream'] as number];
      const [threshold, scale] = [dropoutThreshold(p), 1 / (1 - p)];
      return tensor(dtype, dims(), (_, i) => (dropoutBits(seed, step, stream, i) >= threshold ? scale : 0));
    }
  }
  throw new InternalError(`interpret: no rule for op '${n.op}'`);
}

/** Every node's value, by id. */
export function interpretAll(g: Graph, b: Bindings): Map<number, HostTensor> {
  const env = bindSymbols(g, b);
  const vals = new Map<number, HostTensor>();
  for (const n of g.nodes) {
    let t = evalNode(n, n.inputs.map((i) => vals.get(i)!), b, env);
    if (t.dtype === 'i32' && n.op !== 'input' && n.op !== 'param' && n.op !== 'state')
      t = { ...t, data: t.data.map((v) => Math.trunc(v) | 0) };
    const want = n.type.shape.map((d) => evalIn(env, d, `%${n.id} ${n.op}`));
    if (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i]))
      throw new InternalError(`interpret: %${n.id} ${n.op} made [${t.shape.join(', ')}], its type says [${want.join(', ')}]`);
    vals.set(n.id, t);
  }
  return vals;
}

/** The graph's outputs, by name. */
export function interpret(g: Graph, b: Bindings): Record<string, HostTensor> {
  const vals = interpretAll(g, b);
  return Object.fromEntries(g.outputs.map((o) => [o.name, vals.get(o.value)!]));
}
