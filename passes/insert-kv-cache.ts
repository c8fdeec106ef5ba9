/**
 * insert-kv-cache — the full-sequence graph becomes a stateful *step* graph.
 *
 * Contract. In: a graph with input `tokens` i32[seq] and one or more causal attentions (each a
 * `causal_mask` between a score matmul q·kᵀ and the matmul p·v). Out: the same model run on `seq`
 * new tokens starting at position `pos` (a new dim symbol, bound at run time like `seq`), with
 * per attention L two state buffers `cache.k.L`, `cache.v.L` f32[maxSeqLen, nKvHeads, headDim]
 * and two extra outputs `state:cache.k.L`, `state:cache.v.L` (the caches with the new rows
 * written at `pos`; the runtime keeps them as the next step's state). meta.kvCache =
 * { maxSeqLen, maxBatch, states } (maxBatch: the most tokens a step may take, from the options,
 * else maxSeqLen; plan-memory sizes the step for it). With `lastLogitsOnly`, `logits` is f32[1, vocab]: the last position only.
 *
 * Per attention (found from its causal_mask, not by position):
 *
 *     k[seq,Hkv,hd] ─▶ rope(offset pos) ─▶ update_slice(cache.k, at pos) ─▶ state:cache.k.L
 *                                            └─slice [0, pos+seq) ─▶ transpose ─┐
 *     q[seq,H,hd] ─▶ rope(offset pos) ─▶ transpose ─▶ … ───────────────▶ matmul(q, kᵀ)
 *                                                           ─▶ … causal_mask(offset pos) ─▶ softmax
 *     v[seq,Hkv,hd] ─update_slice(cache.v, at pos)─▶ slice [0, pos+seq) ─▶ transpose ─▶ matmul(p, v)
 *
 * The cache holds K *after* its rope (as llama.cpp's does): a key is rotated once, at its own
 * position, when it is written, not again at every later step — which made a decode step's cost
 * grow with every cached key. A K side without a rope is cached as it comes. fuse-rope-qk matches
 * both forms (rope on q only, or on both sides in a full graph). Between the score matmul and p·v
 * the key length changes from `seq` to `pos + seq`: those nodes are rebuilt with their types
 * re-inferred, and reshape targets follow the key length (dims aligned from the end).
 *
 * Stages: find the attentions; rebuild every node in order (new cache nodes emitted where the
 * score and p·v matmuls read k and v); drop what nothing reads any more; validate.
 * Leaves to others: fusing (fuse-rope-qk sees the same pattern as in the full graph), memory
 * planning. The runtime must check pos + seq ≤ maxSeqLen before a step: past it, the step's
 * update_slice is out of bounds (K1009 in the interpreter) and a backend would write past the
 * cache. An iota that counts along the sequence (positions for learned position embeddings, as in
 * examples/gpt-layernorm.ts) counts from pos too. Other position-dependent computations (a
 * position made by arithmetic on a cumulative sum, say) are outside what this pass understands.
 * Order: after the clean-ups (constant-fold, cse, dce), before the fusions.
 */
import { type Dim, dimAdd, dimEq, dimSub, dimToString, isStatic, sym } from '../graph/dim.js';
import { InternalError, KilnError, ShapeError } from '../graph/errors.js';
import type { Graph, GraphOutput, Node } from '../graph/graph.js';
import { type Attrs, BINARY_OPS, OPS, type OpKind, UNARY_OPS } from '../graph/ops.js';
import { type TensorType, byteSize, typeToString } from '../graph/types.js';
import { validate } from '../graph/validate.js';
import { alignReshape, mentions, pruneAndRenumber, substDim, usersOf } from './kv-util.js';
import type { Pass, PassOptions, PassResult } from './pass.js';

const PASS = 'insert-kv-cache';
export const POS = 'pos';

export interface KvCacheMeta {
  readonly maxSeqLen: number;
  /** The most tokens one step takes (seq ≤ maxBatch ≤ maxSeqLen): a longer prompt goes in steps. */
  readonly maxBatch: number;
  /** State names in order: cache.k.0, cache.v.0, cache.k.1, … */
  readonly states: readonly string[];
}

/** One attention as found from its causal_mask. */
interface Attention {
  readonly index: number;
  readonly mask: number;
  /** matmul(q, kᵀ) */
  readonly scores: number;
  /** The rope on the q side, if any: its offset becomes pos. */
  readonly qRope: number | undefined;
  readonly k: KvSide;
  /** matmul(p, v) */
  readonly pv: number;
  readonly v: KvSide;
}

/** Where K (or V) enters the cache — a [seq, heads, headDim] value — and the chain from there to the matmul. */
interface KvSide {
  readonly point: number;
  /** Nodes after `point` up to the matmul operand, in order; replayed on the cache slice. */
  readonly chain: readonly number[];
  /** The rope at `point`, when the cache stores rotated values: its offset shifts by pos. */
  readonly rope: number | undefined;
}

const UNARY = new Set<string>(UNARY_OPS);
const BINARY = new Set<string>(BINARY_OPS);
/** Ops a k or v value may pass through between its projection and the attention matmul. */
const KV_CHAIN = new Set<OpKind>(['reshape', 'transpose', 'rope', 'broadcast']);

function notAttention(g: Graph, n: Node, why: string): never {
  throw new KilnError('K1018', `${PASS}: graph ${g.name}: the causal_mask %${n.id}${n.scope ? ` (${n.scope})` : ''} is not part of an attention this pass understands: ${why}`, n.loc);
}

function maxSeqLenOf(g: Graph, opts: PassOptions): number | undefined {
  const m = opts.maxSeqLen ?? (g.meta['llama'] as { maxSeqLen?: unknown } | undefined)?.maxSeqLen;
  return typeof m === 'number' ? m : undefined;
}

/** The symbol that counts new tokens: the sole dim of input `tokens`. */
function seqSymbol(g: Graph): string {
  const tokens = g.nodes.find((n) => n.op === 'input' && n.attrs['name'] === 'tokens');
  if (!tokens) throw new KilnError('K1018', `${PASS}: graph ${g.name} has no input 'tokens' (a step graph is fed new tokens)`);
  const d = tokens.type.shape.length === 1 ? tokens.type.shape[0]! : 0;
  const names = typeof d === 'number' || d.offset !== 0 ? [] : Object.keys(d.terms);
  if (typeof d === 'number' || names.length !== 1 || d.terms[names[0]!] !== 1)
    throw new KilnError('K1018', `${PASS}: input 'tokens' is ${typeToString(tokens.type)}; expected i32[seq] with seq a symbol`, tokens.loc);
  return names[0]!;
}

function findAttentions(g: Graph, seq: string): Attention[] {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const node = (id: number) => byId.get(id)!;
  const users = usersOf(g.nodes);
  const hasSeq = (id: number) => node(id).type.shape.some((d) => mentions(d, seq));

  /** The one operand of `n` that carries the sequence; undefined if none or several do. */
  const dataOperand = (n: Node): number | undefined => {
    if (UNARY.has(n.op) || n.op === 'reshape' || n.op === 'transpose' || n.op === 'softmax') return n.inputs[0];
    if (BINARY.has(n.op)) {
      const seqish = n.inputs.filter(hasSeq);
      return seqish.length === 1 ? seqish[0] : undefined;
    }
    return undefined;
  };

  const isKvShape = (t: TensorType) => t.shape.length === 3 && dimEq(t.shape[0]!, sym(seq)) && isStatic(t.shape[1]!) && isStatic(t.shape[2]!);

  /** From a matmul operand back to the [seq, heads, headDim] value the cache stores. */
  const kvSide = (mask: Node, start: number, what: string): KvSide => {
    const visited: number[] = [];
    let cur = start;
    while (KV_CHAIN.has(node(cur).op)) {
      visited.push(cur);
      cur = node(cur).inputs[0]!;
    }
    visited.push(cur);
    // The earliest [seq, heads, headDim] value in dataflow order, unless a rope of that shape
    // follows it: then the rope's output, so the cache holds rotated keys (each rotated once,
    // when written, rather than every cached key again at every step).
    let at = -1;
    for (let i = visited.length - 1; i >= 0; i--)
      if (isKvShape(node(visited[i]!).type)) {
        at = i;
        break;
      }
    if (at < 0) notAttention(g, mask, `no ${what} value of shape [${seq}, heads, headDim] feeds the attention matmul`);
    for (let i = at - 1; i >= 0; i--) {
      const n = node(visited[i]!);
      if (n.op === 'rope' && isKvShape(n.type)) {
        at = i;
        break;
      }
    }
    const p = node(visited[at]!);
    return { point: p.id, chain: visited.slice(0, at).reverse(), rope: p.op === 'rope' ? p.id : undefined };
  };

  const out: Attention[] = [];
  for (const mask of g.nodes.filter((n) => n.op === 'causal_mask')) {
    // Back from the mask through scaling and reshapes to q·kᵀ.
    let cur = mask.inputs[0]!;
    while (node(cur).op !== 'matmul') {
      const next = dataOperand(node(cur));
      if (next === undefined) notAttention(g, mask, `%${cur} ${node(cur).op} sits between it and the score matmul`);
      cur = next;
    }
    const scores = node(cur);
    const keyLen = mask.type.shape.at(-1)!;
    if (!dimEq(keyLen, sym(seq)) || !dimEq(scores.type.shape.at(-1)!, sym(seq)))
      notAttention(g, mask, `its key length is ${dimToString(keyLen)}, expected ${seq}`);

    // Forward from the mask through softmax and reshapes to p·v.
    cur = mask.id;
    let pv: Node | undefined;
    for (;;) {
      const us = users.get(cur)!;
      if (us.length !== 1) notAttention(g, mask, `%${cur} has ${us.length} users on the way to p·v`);
      const u = node(us[0]!);
      if (u.op === 'matmul' && u.inputs[0] === cur && u.inputs[1] !== cur) {
        pv = u;
        break;
      }
      if (dataOperand(u) !== cur) notAttention(g, mask, `%${u.id} ${u.op} sits between it and the p·v matmul`);
      cur = u.id;
    }

    let q = scores.inputs[0]!;
    while (node(q).op === 'reshape' || node(q).op === 'transpose') q = node(q).inputs[0]!;
    out.push({
      index: out.length,
      mask: mask.id,
      scores: scores.id,
      qRope: node(q).op === 'rope' ? q : undefined,
      k: kvSide(mask, scores.inputs[1]!, 'key'),
      pv: pv.id,
      v: kvSide(mask, pv.inputs[1]!, 'value'),
    });
  }
  return out;
}

/** Where lastLogitsOnly cuts: the head matmul's hidden-state operand (before a final rmsnorm, which is row-wise). */
function lastRowCut(g: Graph, seq: string): { consumer: number; operand: number; axis: number } {
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const out = g.outputs.find((o) => o.name === 'logits');
  if (!out) throw new KilnError('K1018', `${PASS}: lastLogitsOnly needs an output 'logits'; graph ${g.name} has ${g.outputs.map((o) => `'${o.name}'`).join(', ') || 'none'}`);
  let n = byId.get(out.value)!;
  // Back through a bias add or a scale to the head matmul.
  while (n.op !== 'matmul') {
    const seqish = n.inputs.filter((i) => byId.get(i)!.type.shape.some((d) => mentions(d, seq)));
    if (!(UNARY.has(n.op) || BINARY.has(n.op)) || seqish.length !== 1)
      throw new KilnError('K1018', `${PASS}: lastLogitsOnly: cannot find the output head behind 'logits' (stopped at %${n.id} ${n.op})`, n.loc);
    n = byId.get(seqish[0]!)!;
  }
  let consumer = n;
  const pre = byId.get(n.inputs[0]!)!;
  if (pre.op === 'rmsnorm') consumer = pre;
  const operand = consumer.inputs[0]!;
  const shape = byId.get(operand)!.type.shape;
  const axis = shape.findIndex((d) => dimEq(d, sym(seq)));
  if (axis < 0 || axis === shape.length - 1)
    throw new KilnError('K1018', `${PASS}: lastLogitsOnly: the hidden state %${operand} is ${typeToString(byId.get(operand)!.type)}, with no ${seq} axis to cut`, consumer.loc);
  return { consumer: consumer.id, operand, axis };
}

export function insertKvCacheGraph(g: Graph, opts: PassOptions = {}): { graph: Graph; attentions: number } {
  if (g.meta['kvCache'] !== undefined || g.nodes.some((n) => n.op === 'state'))
    throw new KilnError('K1018', `${PASS}: graph ${g.name} already has state (a KV cache); run this pass once, on the full-sequence graph`);
  const maxSeqLen = maxSeqLenOf(g, opts);
  if (maxSeqLen === undefined || !Number.isInteger(maxSeqLen) || maxSeqLen <= 0)
    throw new KilnError('K1018', `${PASS}: graph ${g.name}: no maxSeqLen (a positive integer) in the options or meta.llama; the cache needs one`);
  const maxBatch = opts.maxBatch ?? maxSeqLen;
  if (!Number.isInteger(maxBatch) || maxBatch <= 0) throw new KilnError('K1018', `${PASS}: maxBatch must be a positive integer, got ${maxBatch}`);
  const seq = seqSymbol(g);
  if (g.nodes.some((n) => n.type.shape.some((d) => mentions(d, POS))))
    throw new KilnError('K1018', `${PASS}: graph ${g.name} already uses the dim symbol '${POS}', which this pass introduces`);
  const atts = findAttentions(g, seq);
  if (atts.length === 0) throw new KilnError('K1018', `${PASS}: graph ${g.name} has no causal attention (no causal_mask node) to give a KV cache`);

  const pos = sym(POS);
  const keyLen = dimAdd(pos, sym(seq));
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  const shifted = new Set<number>(atts.flatMap((a) => [a.mask, a.qRope, a.k.rope, a.v.rope].filter((id) => id !== undefined)));
  const atScores = new Map(atts.map((a) => [a.scores, a]));
  const atPv = new Map(atts.map((a) => [a.pv, a]));
  const cut = opts.lastLogitsOnly ? lastRowCut(g, seq) : undefined;

  const nodes: Node[] = [];
  const map = new Map<number, number>();
  const stateOuts: GraphOutput[] = [];
  const states: string[] = [];

  const emit = (op: OpKind, inputs: number[], attrs: Attrs, like: Node, scope = like.scope): number => {
    let type: TensorType;
    try {
      type = OPS[op].infer(inputs.map((i) => nodes[i]!.type), attrs);
    } catch (e) {
      if (e instanceof ShapeError) throw new InternalError(`${PASS}: rebuilding %${like.id} (${like.scope}) ${op}: ${e.message}`);
      throw e;
    }
    const id = nodes.length;
    nodes.push({ id, op, inputs, attrs, type, scope, ...(like.loc ? { loc: like.loc } : {}) });
    return id;
  };

  /** Write the new rows into the cache, read back [0, pos+seq), and replay the chain to the matmul. */
  const cached = (side: KvSide, kind: 'k' | 'v', index: number): number => {
    const point = byId.get(side.point)!;
    const fresh = map.get(side.point)!;
    const [, heads, hd] = point.type.shape as [Dim, number, number];
    const name = `cache.${kind}.${index}`;
    const scope = [point.scope, `${kind}_cache`].filter(Boolean).join('.');
    const state = emit('state', [], { name, dtype: point.type.dtype, shape: [maxSeqLen, heads, hd] }, point, scope);
    const written = emit('update_slice', [state, fresh], { axis: 0, start: pos }, point, scope); // [maxSeqLen, heads, hd]
    stateOuts.push({ name: `state:${name}`, value: written });
    states.push(name);
    let cur = emit('slice', [written], { axis: 0, start: 0, end: keyLen }, point, scope); // [pos+seq, heads, hd]
    for (const id of side.chain) {
      const n = byId.get(id)!;
      const attrs = Object.fromEntries(
        Object.entries(n.attrs).map(([k, v]) => {
          const kind = OPS[n.op].attrs[k];
          if (kind === 'dim') return [k, substDim(v as Dim, seq, keyLen)];
          if (kind === 'dims') return [k, (v as Dim[]).map((d) => substDim(d, seq, keyLen))];
          return [k, v];
        }),
      );
      cur = emit(n.op, [cur], attrs, n);
    }
    return cur;
  };

  for (const n of g.nodes) {
    const inputs = n.inputs.map((i) => map.get(i)!);
    const a = atScores.get(n.id);
    if (a) inputs[1] = cached(a.k, 'k', a.index);
    const p = atPv.get(n.id);
    if (p) inputs[1] = cached(p.v, 'v', p.index);
    if (cut && n.id === cut.consumer) {
      const x = inputs[0]!;
      const len = nodes[x]!.type.shape[cut.axis]!;
      inputs[0] = emit('slice', [x], { axis: cut.axis, start: dimSub(len, 1), end: len }, n); // [1, dim]
    }
    let attrs = n.attrs;
    if (shifted.has(n.id)) attrs = { ...attrs, offset: dimAdd(attrs['offset'] as Dim, pos) };
    // An iota counting along the sequence numbers the tokens (learned position embeddings): the
    // step's tokens sit at pos, pos + 1, …, so it counts from start + pos.
    if (n.op === 'iota' && dimEq(n.type.shape.at(attrs['axis'] as number)!, sym(seq))) attrs = { ...attrs, start: dimAdd(attrs['start'] as Dim, pos) };
    if (n.op === 'reshape') {
      const [oldIn, newIn] = [byId.get(n.inputs[0]!)!.type.shape, nodes[inputs[0]!]!.type.shape];
      if (!oldIn.every((d, i) => dimEq(d, newIn[i]!))) {
        const shape = alignReshape(oldIn, newIn, attrs['shape'] as Dim[]);
        if (!shape) throw new InternalError(`${PASS}: cannot carry the reshape %${n.id} (${n.scope}) over to the key length ${dimToString(keyLen)}`);
        attrs = { ...attrs, shape };
      }
    }
    map.set(n.id, emit(n.op, inputs, attrs, n));
  }

  const meta: KvCacheMeta = { maxSeqLen, maxBatch: Math.min(maxBatch, maxSeqLen), states };
  const rebuilt: Graph = {
    ...g,
    nodes,
    outputs: [...g.outputs.map((o) => ({ name: o.name, value: map.get(o.value)! })), ...stateOuts],
    meta: { ...g.meta, kvCache: meta },
  };
  const graph = pruneAndRenumber(rebuilt);
  validate(graph);
  return { graph, attentions: atts.length };
}

export const insertKvCache: Pass = {
  name: PASS,
  reason: 'turn the full-sequence graph into a step graph that keeps K and V of past tokens in state',
  run(g: Graph, opts: PassOptions): PassResult {
    const { graph, attentions } = insertKvCacheGraph(g, opts);
    const cacheBytes = graph.nodes.filter((n) => n.op === 'state').reduce((s, n) => s + byteSize(n.type), 0);
    return { graph, stats: { attentions, states: 2 * attentions, cacheBytes } };
  },
};
