/**
 * Where each value of a Program lives in the module's linear memory.
 *
 *   [0, 1024)       the slot table: one i32 byte address per dynamically placed value
 *   static region   params (raw and/or repacked for matvec/matmul), states of static size,
 *                   consts, and the arena of the memory plan (meta.memoryPlan) at its offsets
 *   dynamic region  inputs, values sized by run-time symbols (seq, pos): placed by the host
 *                   before each run (sizes are known then) and read by the module off the table
 *
 * Aliases cost nothing: an unplanned reshape is its operand's bytes; an update_slice of a state
 * that is that state's `state:` output (and that nothing reads after) writes into the state; a
 * slice [0, end) of such an update's leading axis (the KV cache read back) is a view of its
 * first rows: nothing writes the state after the update in that run, so the view stays true.
 * Likewise a head swap (transpose [1, 0, 2]) of such a view that only matmuls read as their b is
 * not copied: the matmul reads the rows in place, with strides (`swaps`). Not when every value is
 * read back (debugValues): the swap's bytes would not be its value.
 * The plan is trusted only where the schedule agrees with it (as the js backend does).
 */
import { type Dim, isStatic } from '../../graph/dim.js';
import { InternalError, KilnError } from '../../graph/errors.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import { elementwiseForm } from '../js/kernels/fused-elementwise.js';
import { ropeQkForm } from '../js/kernels/fused-rope-qk.js';
import { causalSoftmaxForm } from '../js/kernels/fused-causal-softmax.js';
import { swigluForm } from '../js/kernels/fused-swiglu.js';
import { ropeQkScratch } from './kernels/fused-rope-qk.js';
import { scatterAddScratch } from './kernels/scatter-add.js';
import type { ScratchSize } from './host.js';
import { inlineBody } from '../inline.js';
import { checkPlan, type MemoryPlanLike } from '../plan.js';
import { ROPE_ID0, type RopeTable, ropeKey, ropeUses } from './rope-table.js';

export const BACKEND = 'wasm';
/** Fused patterns the wasm backend runs as one kernel (a body of another form runs as its decomposition). */
export const FUSED = ['rope_qk', 'swiglu', 'causal_softmax', 'elementwise'] as const;
/** Slot-table id of the scratch area (no node has a negative id). */
export const SCRATCH_ID = -1;

const f32Operands = (n: Node, body: FusedBody) => body.nodes.every((b) => b.op !== 'input' || b.type.dtype === 'f32') && n.type.dtype === 'f32';
/** Whether the kernel of a fused node's pattern takes this body; else it runs as its decomposition. */
const HAS_FORM: Readonly<Record<string, (n: Node, body: FusedBody) => boolean>> = {
  elementwise: (_n, body) => elementwiseForm(body),
  rope_qk: (n, body) => ropeQkForm(body) !== undefined && f32Operands(n, body),
  swiglu: (n, body) => swigluForm(body) !== undefined && f32Operands(n, body),
  causal_softmax: (n, body) => causalSoftmaxForm(body) !== undefined && f32Operands(n, body),
};
export const TABLE_BYTES = 4096;
/** The slot words end where the threads' job areas (emit.ts jobArea) begin. */
const SLOT_BYTES = 3840;


export type Home =
  | { kind: 'static'; at: number; bytes: number }
  | { kind: 'arena'; offset: number; cap: number }
  | { kind: 'slot'; slot: number }
  | { kind: 'alias'; of: number };

const SOURCE = new Set(['input', 'param', 'state']);
const CORE_KERNELS = new Set([
  'neg', 'abs', 'exp', 'log', 'sqrt', 'rsqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'silu', 'gelu',
  'add', 'sub', 'mul', 'div', 'max', 'min', 'pow', 'sum', 'mean', 'amax', 'iota', 'matmul', 'reshape', 'transpose',
  'slice', 'update_slice', 'concat', 'broadcast', 'gather', 'softmax', 'rmsnorm', 'rope', 'causal_mask',
  'one_hot', 'scatter_add', 'cross_entropy', 'dropout_mask',
]);

/** Fused nodes of a pattern with a kernel stay; the rest become their bodies (renumbered into the graph). */
export function expand(g: Graph, notes: string[]): { nodes: Node[]; sched: Map<number, number> } {
  let next = Math.max(-1, ...g.nodes.map((n) => n.id)) + 1;
  const nodes: Node[] = [];
  const sched = new Map<number, number>();
  const visit = (n: Node, at: number): void => {
    if (n.op === 'fused') {
      const pattern = String(n.attrs['pattern']);
      if (!(FUSED as readonly string[]).includes(pattern))
        throw new KilnError('K1019', `wasm backend: no kernel for fused pattern '${pattern}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''}); it has ${FUSED.join(', ')}`, n.loc);
      const body = n.attrs['body'] as FusedBody;
      if (!HAS_FORM[pattern]!(n, body)) {
        notes.push(`%${n.id} fused ${pattern}: its body is not of the form the kernel takes; it runs as its decomposition`);
        for (const m of inlineBody(n, () => next++)) visit(m, at);
        return;
      }
    } else if (!SOURCE.has(n.op) && n.op !== 'const' && !CORE_KERNELS.has(n.op)) {
      throw new KilnError('K1019', `wasm backend: no kernel for op '${n.op}' (%${n.id}${n.scope ? ` in ${n.scope}` : ''})`, n.loc);
    }
    nodes.push(n);
    sched.set(n.id, at);
  };
  g.nodes.forEach((n, i) => visit(n, i));
  return { nodes, sched };
}


export const numelStatic = (n: Node): number | undefined =>
  n.type.shape.every(isStatic) ? n.type.shape.reduce<number>((a, d) => a * (d as number), 1) : undefined;
const align = (x: number, a = 64) => Math.ceil(x / a) * a;

/**
 * A param's copies: raw (row-major), packed into 16-column panels for transB matmuls (its rows
 * are the panels' columns), and/or packed for matmuls that read it as b [K, N] as it is stored
 * (its columns are: the backward pass's g · W), so that both are mm_pk's sequential streams.
 */
export interface ParamHome {
  readonly node: Node;
  raw?: number;
  packed?: { at: number; N: number; K: number };
  packedNN?: { at: number; N: number; K: number };
}

export interface Layout {
  readonly homes: Map<number, Home>;
  readonly inPlace: Set<number>;
  /** Slices whose result is the first rows of their operand's bytes (their kernel only checks bounds). */
  readonly views: Set<number>;
  /** Head swaps (transpose [1, 0, 2]) left uncopied: their matmul readers take strides. */
  readonly swaps: Set<number>;
  readonly params: Map<number, ParamHome>;
  /** `${node id}:${operand}` of the operands read from their packed copy (matmul transB b; swiglu's W1, W3). */
  readonly packedUse: Set<string>;
  /** `${node id}:1` of the matmuls (not transB) that read their b from its column-packed copy. */
  readonly packedNNUse: Set<string>;
  readonly staticBytes: number;
  readonly slots: number[];
  readonly arenaAt: number;
  /** The scratch area's slot and the floats each kernel needs (the host reserves the largest). */
  readonly scratch: { readonly slot: number; readonly elems: readonly ScratchSize[] } | undefined;
  /** The rope cos/sin tables, one per (base, D), by key (rope-table.ts). */
  readonly ropeTables: ReadonlyMap<string, RopeTable>;
}

/**
 * The operands of `u` at which it reads param `p` from a 16-column packed copy: a 2-D f32 [N, K]
 * weight that is the b of a transB matmul, or W1/W3 of a swiglu the kernel takes. Where `u` also
 * reads `p` some other way, none (the param is kept row-major for it).
 */
function packableAt(u: Node, p: Node): number[] {
  if (p.type.shape.length !== 2 || p.type.dtype !== 'f32') return [];
  if (u.op === 'matmul') return u.attrs['transB'] === true && u.inputs[1] === p.id && u.inputs[0] !== p.id ? [1] : [];
  if (u.op !== 'fused' || u.attrs['pattern'] !== 'swiglu') return [];
  const form = swigluForm(u.attrs['body'] as FusedBody);
  if (!form || u.inputs[form.x] === p.id) return [];
  const at = [form.gate, form.up].filter((i) => u.inputs[i] === p.id);
  return at.length && u.inputs.every((id, i) => id !== p.id || at.includes(i)) ? at : [];
}

/** Whether matmul `u` reads param `p` as its b [K, N], not transposed: a 2-D f32 weight (the backward pass's g · W). */
function packableNN(u: Node, p: Node): boolean {
  return p.type.shape.length === 2 && p.type.dtype === 'f32' && u.op === 'matmul' && u.attrs['transB'] !== true && u.inputs[1] === p.id && u.inputs[0] !== p.id;
}

/** `strides`: whether kernels may read a value in place with strides (not when every value is read back). */
export function layout(g: Graph, nodes: readonly Node[], sched: Map<number, number>, plan: MemoryPlanLike | undefined, notes: string[], strides = true): Layout {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const outputs = new Set(g.outputs.map((o) => o.value));
  const pos = new Map(nodes.map((n, i) => [n.id, i]));
  const homes = new Map<number, Home>();
  const inPlace = new Set<number>();
  const planned = new Map((plan?.buffers ?? []).map((b) => [b.value, b]));
  const users = new Map<number, Node[]>();
  for (const n of nodes) for (const i of n.inputs) users.set(i, [...(users.get(i) ?? []), n]);

  for (const o of g.outputs) {
    const n = byId.get(o.value);
    if (n?.op !== 'update_slice') continue;
    const base = byId.get(n.inputs[0]!)!;
    if (base.op !== 'state' || o.name !== `state:${String(base.attrs['name'])}` || n.inputs[1] === base.id || outputs.has(base.id)) continue;
    if (numelStatic(base) === undefined) continue;
    if ((users.get(base.id) ?? []).every((u) => u.id === n.id || pos.get(u.id)! < pos.get(n.id)!)) inPlace.add(n.id);
  }
  const views = new Set<number>();
  for (const n of nodes) {
    if (n.op !== 'slice' || outputs.has(n.id) || !inPlace.has(n.inputs[0]!)) continue;
    const ax = n.attrs['axis'] as number;
    const lead = n.type.shape.slice(0, ax < 0 ? ax + n.type.shape.length : ax);
    if (n.attrs['start'] === 0 && lead.every((d) => d === 1)) views.add(n.id);
  }
  const swaps = new Set<number>();
  for (const n of strides ? nodes : []) {
    if (n.op !== 'transpose' || outputs.has(n.id) || n.type.shape.length !== 3 || (n.attrs['perm'] as number[]).join() !== '1,0,2') continue;
    if (!views.has(n.inputs[0]!) && !inPlace.has(n.inputs[0]!)) continue;
    const us = users.get(n.id) ?? [];
    if (us.length && us.every((u) => u.op === 'matmul' && u.inputs[1] === n.id && u.inputs[0] !== n.id)) swaps.add(n.id);
  }

  let at = TABLE_BYTES;
  const take = (bytes: number) => {
    const a = at;
    at = align(at + bytes);
    return a;
  };
  const params = new Map<number, ParamHome>();
  const packedUse = new Set<string>();
  const packedNNUse = new Set<string>();
  const slots: number[] = [];
  for (const n of nodes) {
    if (n.op === 'param') {
      const size = numelStatic(n);
      // A param sized by run-time symbols is copied in at each run, like an input.
      if (size === undefined) {
        params.set(n.id, { node: n });
        continue;
      }
      const ph: ParamHome = { node: n };
      for (const u of users.get(n.id) ?? []) {
        const at = packableAt(u, n);
        if (packableNN(u, n)) {
          if (!ph.packedNN) {
            const [K, N] = n.type.shape as [number, number];
            ph.packedNN = { at: take(Math.ceil(N / 16) * 16 * K * 4), N, K };
          }
          packedNNUse.add(`${u.id}:1`);
        } else if (at.length) {
          if (!ph.packed) {
            const [N, K] = n.type.shape as [number, number];
            ph.packed = { at: take(Math.ceil(N / 16) * 16 * K * 4), N, K };
          }
          for (const i of at) packedUse.add(`${u.id}:${i}`);
        } else ph.raw ??= take(size * 4);
      }
      ph.raw ??= ph.packed || ph.packedNN ? undefined : take(size * 4);
      params.set(n.id, ph);
      homes.set(n.id, { kind: 'static', at: ph.raw ?? ph.packed?.at ?? ph.packedNN!.at, bytes: size * 4 });
    } else if ((n.op === 'state' || n.op === 'const') && numelStatic(n) !== undefined) {
      const bytes = numelStatic(n)! * 4;
      homes.set(n.id, { kind: 'static', at: take(bytes), bytes });
    }
  }
  const arenaAt = plan ? take(plan.arenaBytes) : 0;
  for (const n of nodes) {
    if (homes.has(n.id)) continue;
    const slot = () => {
      slots.push(n.id);
      return { kind: 'slot' as const, slot: slots.length - 1 };
    };
    if (inPlace.has(n.id) || views.has(n.id) || swaps.has(n.id)) homes.set(n.id, { kind: 'alias', of: n.inputs[0]! });
    else if (SOURCE.has(n.op) || n.op === 'const' || outputs.has(n.id)) homes.set(n.id, slot());
    else if (n.op === 'reshape' && !planned.has(n.id)) homes.set(n.id, { kind: 'alias', of: n.inputs[0]! });
    else {
      const b = planned.get(n.id);
      homes.set(n.id, b ? { kind: 'arena', offset: b.offset, cap: Math.floor(b.bytes / 4) } : slot());
    }
  }
  const elems = nodes.flatMap((n): ScratchSize[] => {
    const types = n.inputs.map((i) => byId.get(i)!.type);
    const e = ropeQkScratch(n, types) ?? scatterAddScratch(n, types);
    return e === undefined ? [] : [e];
  });
  const scratch = elems.length ? { slot: slots.push(SCRATCH_ID) - 1, elems } : undefined;
  const ropeTables = new Map<string, RopeTable>();
  for (const n of nodes)
    for (const u of ropeUses(n, n.inputs.map((i) => byId.get(i)!.type))) {
      const key = ropeKey(u.base, u.D);
      let t = ropeTables.get(key);
      if (!t) ropeTables.set(key, (t = { base: u.base, D: u.D, slot: slots.push(ROPE_ID0 - ropeTables.size) - 1, uses: [] }));
      (t.uses as { offset: Dim; len: Dim }[]).push({ offset: u.offset, len: u.len });
    }
  if (slots.length * 4 > SLOT_BYTES) throw new InternalError(`wasm backend: ${slots.length} dynamic values do not fit the slot table`);
  if (plan)
    checkPlan(nodes, sched, plan, homes, (id, why) => {
      slots.push(id);
      homes.set(id, { kind: 'slot', slot: slots.length - 1 });
      notes.push(`%${id}: not placed in the arena (${why})`);
    });
  return { homes, inPlace, views, swaps, params, packedUse, packedNNUse, staticBytes: at, slots, arenaAt, scratch, ropeTables };
}

