/**
 * plan-memory — every intermediate value gets an offset in one arena; values that are never
 * alive at the same time share bytes.
 *
 * Contract. The schedule is the node order. A value is live from the node that defines it
 * (`start`) to its last user (`end`), both inclusive: a node's operands and its result are live
 * together, so a result never lands on its own operands. Sources (input, param, state, const) and
 * graph outputs are not planned: the runtime owns them. Sizes are taken at the largest the
 * symbols can make them: seq ≤ maxBatch ≤ maxSeqLen and pos ≤ maxSeqLen, and, as the runtime
 * checks before a step, pos + seq ≤ maxSeqLen — so the key length `pos + seq` counts maxSeqLen,
 * not twice that, and attention's scores take maxBatch rows, not maxSeqLen. maxSeqLen comes from
 * the options, meta.llama or meta.kvCache (maxBatch from the options or meta.kvCache, else
 * maxSeqLen); a graph with symbols and none of these, or with a symbol other than seq and pos,
 * cannot be bounded (K1018).
 *
 * Packing is greedy by size with best fit (largest buffers first; each takes the smallest gap,
 * 64-byte aligned, between the buffers already placed whose live ranges meet its own, or goes
 * above them), so freed space is reused. The plan goes to meta.memoryPlan (see `MemoryPlan`).
 * Every value is its own buffer: reshapes are not aliased to their operand (a later refinement).
 * Order: last, after the fusions and the final dce — it plans the schedule the backend runs.
 */
import { type Dim, dimSymbols } from '../graph/dim.js';
import { DTYPE_INFO } from '../graph/dtype.js';
import { InternalError, KilnError } from '../graph/errors.js';
import type { Graph, Node } from '../graph/graph.js';
import { type Bindings, interpretAll } from '../graph/interpret.js';
import { type HostTensor, numelOf } from '../graph/tensor.js';
import { typeToString } from '../graph/types.js';
import { tokensSymbol } from './kv-util.js';
import type { Pass, PassOptions, PassResult } from './pass.js';

const PASS = 'plan-memory';
export const ALIGN = 64;
const SOURCES = new Set(['input', 'param', 'state', 'const']);


export interface PlannedBuffer {
  /** The node id whose value lives here. */
  readonly value: number;
  /** Byte offset in the arena, a multiple of 64. */
  readonly offset: number;
  /** Bytes at the symbols' upper bounds. */
  readonly bytes: number;
  /** Schedule index of the defining node. */
  readonly start: number;
  /** Schedule index of the last user (= start when nothing reads it). */
  readonly end: number;
}

export interface MemoryPlan {
  readonly arenaBytes: number;
  /** Sum of every planned buffer's bytes: what the arena would take without reuse. */
  readonly totalBytes: number;
  /** The upper bound used for each symbol. */
  readonly bounds: Readonly<Record<string, number>>;
  readonly buffers: readonly PlannedBuffer[];
}

function maxSeqLenOf(g: Graph, opts: PassOptions): number | undefined {
  const m = opts.maxSeqLen ?? (g.meta['llama'] as { maxSeqLen?: unknown } | undefined)?.maxSeqLen ?? (g.meta['kvCache'] as { maxSeqLen?: unknown } | undefined)?.maxSeqLen;
  return typeof m === 'number' && Number.isInteger(m) && m > 0 ? m : undefined;
}

/** maxBatch from the options or meta.kvCache, at most `max`; `max` when neither gives one. */
function maxBatchOf(g: Graph, opts: PassOptions, max: number): number {
  const b = opts.maxBatch ?? (g.meta['kvCache'] as { maxBatch?: unknown } | undefined)?.maxBatch;
  return typeof b === 'number' && Number.isInteger(b) && b > 0 ? Math.min(b, max) : max;
}

/**
 * The largest value of `d` for seq, pos ≥ 0 with seq ≤ batch and seq + pos ≤ max: a linear
 * function is largest at a corner of that polygon — (0, 0), (batch, 0), (batch, max − batch) or
 * (0, max). A symbol in `fixed` (a program specialised to one token: seq = 1) takes its value;
 * the other then runs up to what is left.
 */
function dimBound(d: Dim, max: number, fixed: Readonly<Record<string, number>> = {}, batch = max, seq = 'seq'): number {
  if (typeof d === 'number') return d;
  const [s, p] = [d.terms[seq] ?? 0, d.terms['pos'] ?? 0];
  const [fs, fp] = [fixed[seq], fixed['pos']];
  const corners: [number, number][] =
    fs !== undefined || fp !== undefined
      ? fs !== undefined && fp !== undefined
        ? [[fs, fp]]
        : fs !== undefined
          ? [[fs, 0], [fs, Math.max(0, max - fs)]]
          : [[0, fp!], [Math.max(0, Math.min(batch, max - fp!)), fp!]]
      : [[0, 0], [batch, 0], [batch, max - batch], [0, max]];
  return Math.max(0, ...corners.map(([cs, cp]) => d.offset + s * cs + p * cp));
}

/**
 * The plan of `g`'s schedule. `fixed` gives symbols a program is specialised to (the js decode
 * module: seq = 1), so that its arena holds one token's values rather than a whole prompt's.
 */
export function planMemoryGraph(g: Graph, opts: PassOptions = {}, fixed: Readonly<Record<string, number>> = {}): MemoryPlan {
  const symbols = new Set(g.nodes.flatMap((n) => n.type.shape.flatMap(dimSymbols)));
  const seq = tokensSymbol(g) ?? 'seq';
  const other = [...symbols].filter((s) => s !== seq && s !== 'pos');
  if (other.length)
    throw new KilnError('K1018', `${PASS}: graph ${g.name}: cannot bound the dim symbol${other.length > 1 ? 's' : ''} ${other.map((s) => `'${s}'`).join(', ')} (only ${seq}, the tokens' dim, and pos have a limit, maxSeqLen)`);
  const max = maxSeqLenOf(g, opts);
  if (symbols.size && max === undefined)
    throw new KilnError('K1018', `${PASS}: graph ${g.name} has symbolic sizes (${[...symbols].join(', ')}) but no maxSeqLen in the options, meta.llama or meta.kvCache to bound them`);
  const batch = maxBatchOf(g, opts, max ?? 0);
  const bounds = Object.fromEntries([...symbols].sort().map((s) => [s, fixed[s] ?? (s === seq ? batch : fixed[seq] !== undefined && s === 'pos' ? max! - fixed[seq] : max!)]));

  const index = new Map(g.nodes.map((n, i) => [n.id, i]));
  const lastUse = new Map<number, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => lastUse.set(v, i)));
  const outputs = new Set(g.outputs.map((o) => o.value));

  const wanted = g.nodes
    .filter((n) => !SOURCES.has(n.op) && !outputs.has(n.id))
    .map((n) => {
      const start = index.get(n.id)!;
      const bytes = n.type.shape.reduce<number>((b, d) => b * dimBound(d, max ?? 0, fixed, batch, seq), DTYPE_INFO[n.type.dtype].bytes);
      return { value: n.id, bytes, start, end: lastUse.get(n.id) ?? start };
    });

  // Largest first; ties by schedule so the plan is deterministic.
  const order = [...wanted].sort((a, b) => b.bytes - a.bytes || a.start - b.start);
  const placed: PlannedBuffer[] = [];
  for (const w of order) {
    const meets = placed.filter((p) => p.start <= w.end && w.start <= p.end).sort((a, b) => a.offset - b.offset);
    let best: number | undefined;
    let bestGap = Infinity;
    let at = 0;
    for (const p of meets) {
      const gap = p.offset - at;
      if (gap >= w.bytes && gap < bestGap) [best, bestGap] = [at, gap];
      at = Math.max(at, alignUp(p.offset + p.bytes));
    }
    placed.push({ ...w, offset: best ?? at });
  }
  const buffers = placed.sort((a, b) => a.start - b.start || a.value - b.value);
  const arenaBytes = alignUp(buffers.reduce((m, b) => Math.max(m, b.offset + b.bytes), 0));
  return { arenaBytes, totalBytes: buffers.reduce((s, b) => s + b.bytes, 0), bounds, buffers };
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

export const planMemory: Pass = {
  name: PASS,
  reason: 'give every intermediate an offset in one arena, reusing the bytes of values no longer live',
  run(g: Graph, opts: PassOptions): PassResult {
    const plan = planMemoryGraph(g, opts);
    return {
      graph: { ...g, meta: { ...g.meta, memoryPlan: plan } },
      stats: { arenaBytes: plan.arenaBytes, totalBytes: plan.totalBytes, buffers: plan.buffers.length },
    };
  },
};

/** The plan plan-memory stored on `g`. */
export function getMemoryPlan(g: Graph): MemoryPlan {
  const plan = g.meta['memoryPlan'] as MemoryPlan | undefined;
  if (!plan || !Array.isArray(plan.buffers)) throw new InternalError(`graph ${g.name} has no memory plan: run ${PASS} first`);
  return plan;
}

/** Throws unless buffers live at the same time are disjoint, aligned and inside the arena. */
export function checkNoOverlap(plan: MemoryPlan): void {
  const bs = plan.buffers;
  for (const b of bs) {
    if (b.offset % ALIGN !== 0) throw new InternalError(`${PASS}: buffer of %${b.value} at ${b.offset} is not ${ALIGN}-byte aligned`);
    if (b.offset < 0 || b.offset + b.bytes > plan.arenaBytes)
      throw new InternalError(`${PASS}: buffer of %${b.value} [${b.offset}, ${b.offset + b.bytes}) is outside the arena of ${plan.arenaBytes} bytes`);
  }
  for (let i = 0; i < bs.length; i++)
    for (let j = i + 1; j < bs.length; j++) {
      const [a, b] = [bs[i]!, bs[j]!];
      const live = a.start <= b.end && b.start <= a.end;
      const share = a.offset < b.offset + b.bytes && b.offset < a.offset + a.bytes && a.bytes > 0 && b.bytes > 0;
      if (live && share)
        throw new InternalError(
          `${PASS}: %${a.value} [${a.offset}, ${a.offset + a.bytes}) live ${a.start}…${a.end} and %${b.value} [${b.offset}, ${b.offset + b.bytes}) live ${b.start}…${b.end} share bytes`,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// the planned executor (for the law test)

/**
 * Runs `g` (which must carry a memory plan) in float64, every planned value written at its offset
 * in one arena and read back from there by its users; with `poison`, a buffer is filled with NaN
 * once its last user has run. Each node runs by the interpreter's own rule (a one-node graph), so
 * any difference from `interpret` comes from the plan. An arena slot is one element: byte offsets
 * are divided by the element size (4 for every dtype today).
 */
export function executePlanned(g: Graph, b: Bindings, opts: { poison: boolean }): Record<string, HostTensor> {
  const plan = getMemoryPlan(g);
  const slot = 4;
  for (const n of g.nodes)
    if (DTYPE_INFO[n.type.dtype].bytes !== slot) throw new InternalError(`executePlanned: ${n.type.dtype} values are not ${slot} bytes; the arena slots assume they are`);
  const arena = new Float64Array(plan.arenaBytes / slot).fill(NaN);
  const planned = new Map(plan.buffers.map((p) => [p.value, p]));
  const freeAt = new Map<number, number[]>();
  for (const p of plan.buffers) freeAt.set(p.end, [...(freeAt.get(p.end) ?? []), p.value]);
  const held = new Map<number, HostTensor>(); // sources and outputs: outside the arena
  const shapes = new Map<number, number[]>();
  const symbols = symbolsOf(g, b);

  const byId = new Map(g.nodes.map((n) => [n.id, n]));

  const read = (id: number): HostTensor => {
    const p = planned.get(id);
    if (!p) return held.get(id)!;
    const shape = shapes.get(id)!;
    const at = p.offset / slot;
    return { dtype: byId.get(id)!.type.dtype, shape, data: arena.slice(at, at + numelOf(shape)) };
  };

  g.nodes.forEach((n, i) => {
    // The node as a graph of its own, its operands inputs arg0, arg1, …
    const args: Node[] = n.inputs.map((v, k) => {
      const type = byId.get(v)!.type;
      return { id: k, op: 'input', inputs: [], attrs: { name: `arg${k}`, dtype: type.dtype, shape: type.shape }, type, scope: '' };
    });
    const self: Node = { ...n, id: args.length, inputs: args.map((a) => a.id) };
    const one: Graph = { name: `${g.name}.%${n.id}`, nodes: [...args, self], outputs: [{ name: 'out', value: self.id }], meta: {} };
    const bind: Bindings = { ...b, inputs: { ...b.inputs, ...Object.fromEntries(n.inputs.map((v, k) => [`arg${k}`, read(v)])) }, symbols };
    const value = interpretAll(one, bind).get(self.id)!;
    const p = planned.get(n.id);
    if (p) {
      if (value.data.length * slot > p.bytes)
        throw new InternalError(`${PASS}: %${n.id} ${typeToString(n.type)} holds ${value.data.length * slot} bytes, planned ${p.bytes} (symbols past their bounds?)`);
      arena.set(value.data, p.offset / slot);
      shapes.set(n.id, value.shape);
    } else held.set(n.id, value);
    if (opts.poison)
      for (const v of freeAt.get(i) ?? []) {
        const q = planned.get(v)!;
        arena.fill(NaN, q.offset / slot, (q.offset + q.bytes) / slot);
      }
  });
  return Object.fromEntries(g.outputs.map((o) => [o.name, read(o.value)]));
}

/** Symbol values: those given, then those read off sources whose dim is exactly one symbol. */
function symbolsOf(g: Graph, b: Bindings): Record<string, number> {
  const env: Record<string, number> = { ...b.symbols };
  const kinds = { input: b.inputs, param: b.params, state: b.state } as const;
  for (const n of g.nodes) {
    const t = (kinds as Record<string, Record<string, HostTensor> | undefined>)[n.op]?.[String(n.attrs['name'])];
    if (!t) continue;
    n.type.shape.forEach((d, i) => {
      if (typeof d !== 'number' && d.offset === 0 && Object.keys(d.terms).length === 1 && Object.values(d.terms)[0] === 1) env[Object.keys(d.terms)[0]!] ??= t.shape[i]!;
    });
  }
  return env;
}
