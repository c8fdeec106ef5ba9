/**
 * Seeded run-time values for a random graph: a value for each dim symbol, and arrays for its
 * inputs, params and state. f32 values are normal(0, 1); i32 values are 0 or 1, small enough to
 * index any table (a gather's rows) most of the time.
 */
import type { HostArray } from '../../backends/backend.js';
import { dimSymbols, evalDim } from '../../graph/dim.js';
import type { Graph } from '../../graph/graph.js';
import type { Bindings } from '../../graph/interpret.js';
import { hostTensor } from '../../graph/tensor.js';
import { numel } from '../../graph/types.js';
import { mulberry32, normalSampler } from '../runtime/rng.js';

/** The bound the passes plan for (plan-memory's maxSeqLen): every drawn symbol stays well below it. */
export const FUZZ_MAX_SEQ_LEN = 8;

export interface CaseValues {
  readonly symbols: Record<string, number>;
  readonly inputs: Record<string, HostArray>;
  readonly params: Record<string, HostArray>;
  readonly state: Record<string, HostArray>;
}

export function graphSymbols(g: Graph): string[] {
  const out = new Set<string>();
  for (const n of g.nodes) for (const d of n.type.shape) for (const s of dimSymbols(d)) out.add(s);
  return [...out].sort();
}

export function drawValues(g: Graph, seed: number): CaseValues {
  const u = mulberry32(seed);
  const randn = normalSampler(seed ^ 0x5bd1e995);
  const symbols: Record<string, number> = {};
  // pos may be 0 (the first step); every other symbol counts something, at least 1.
  for (const s of graphSymbols(g)) symbols[s] = s === 'pos' ? Math.floor(u() * 4) : 1 + Math.floor(u() * 3);
  const v: CaseValues = { symbols, inputs: {}, params: {}, state: {} };
  const where = { input: v.inputs, param: v.params, state: v.state } as const;
  for (const n of g.nodes) {
    if (n.op !== 'input' && n.op !== 'param' && n.op !== 'state') continue;
    const size = numel(n.type.shape.map((d) => evalDim(d, symbols)));
    const arr = n.type.dtype === 'i32' ? Int32Array.from({ length: size }, () => Math.floor(u() * 2)) : Float32Array.from({ length: size }, () => randn());
    where[n.op][String(n.attrs['name'])] = arr;
  }
  return v;
}

/** The same values as the interpreter's bindings. */
export function toBindings(g: Graph, v: CaseValues): Bindings {
  const b: Required<Bindings> = { inputs: {}, params: {}, state: {}, symbols: { ...v.symbols } };
  const from = { input: [v.inputs, b.inputs], param: [v.params, b.params], state: [v.state, b.state] } as const;
  for (const n of g.nodes) {
    if (n.op !== 'input' && n.op !== 'param' && n.op !== 'state') continue;
    const name = String(n.attrs['name']);
    const [src, dst] = from[n.op];
    const data = src[name];
    if (data) dst[name] = hostTensor(n.type.dtype, n.type.shape.map((d) => evalDim(d, v.symbols)), data);
  }
  return b;
}

/** Copies of the state arrays: a backend may write into the ones it is given. */
export function freshState(v: CaseValues): Record<string, HostArray> {
  return Object.fromEntries(Object.entries(v.state).map(([k, a]) => [k, a.slice()]));
}

/** The params a (compiled) graph still has: passes drop the ones no output reads. */
export function paramsOf(g: Graph, all: Readonly<Record<string, HostArray>>): Record<string, HostArray> {
  const out: Record<string, HostArray> = {};
  for (const n of g.nodes) {
    const name = String(n.attrs['name']);
    if (n.op === 'param' && all[name]) out[name] = all[name];
  }
  return out;
}

/**
 * The graph with its f32 constants rounded to float32, as a float32 backend stores them: the
 * reference then computes with the same numbers (5e-324 is 0 in float32, and pow(x, 0) is 1).
 */
export function roundF32Consts(g: Graph): Graph {
  const nodes = g.nodes.map((n) => (n.op === 'const' && n.type.dtype === 'f32' ? { ...n, attrs: { ...n.attrs, value: (n.attrs['value'] as number[]).map(Math.fround) } } : n));
  return { ...g, nodes };
}
