/**
 * The wasm emitter: a Program becomes one WebAssembly module (built with binaryen), whose
 * exported `run(<symbols>)` calls every kernel in schedule order — one call into the module per
 * step. Memory is imported (shared when threads are used); the host places inputs, state and
 * weights (see layout.ts) and reads the outputs.
 *
 * Imports (module "env"): mem; exp, log, sin, cos, tanh, pow (JS Math, f64); powi (i32 pow with
 * ToInt32); fail(kind, node, a, b, c) (the host throws the KilnError); dbg(node, addr, n) (debug
 * builds only: the host copies each node's value); prof(node) (profile builds only: called with -1
 * when `run` starts and with each node's id after its kernel, so the host times the kernels).
 *
 * Threads: column-split kernels (mm_pk, swiglu_pk) are cut into chunks claimed from a shared ticket
 * (generation << 16 | next chunk) by compare-exchange; the caller claims chunks too, so a late
 * worker only means the caller does more of the work. Workers run the exported `work(gen)`.
 */
import { type Dim, dimSymbols, isStatic } from '../../graph/dim.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { FusedBody } from '../../graph/ops.js';
import type { CompileOptions } from '../backend.js';
import { Fn, type Binaryen, type Expr, type Mod } from './fn.js';
import { FUSED_KERNELS, KERNELS } from './kernels/index.js';
import type { WasmCtx } from './kernels/kernel.js';
import { type CausalRows, causalRows, causalZeros } from './causal-rows.js';
import { ropeKey } from './rope-table.js';
import { type MemoryPlanLike, readPlan, rootOf } from '../plan.js';
import { BACKEND, expand, layout, type Layout } from './layout.js';

/** A job area for threads, in the table's last bytes: gen, ticket, done, parts, chunk, stop, fn, args[PAR_ARGS]. */
export interface JobArea {
  readonly gen: number;
  readonly ticket: number;
  readonly done: number;
  readonly parts: number;
  readonly chunk: number;
  readonly stop: number;
  readonly fn: number;
  readonly args: number;
}
/**
 * Job area `i` of two: two threaded programs over one memory (a Session's prefill and decode, see
 * CompileOptions.shareWith) each post jobs to their own workers, which watch their own words.
 */
export function jobArea(i: number): JobArea {
  if (i !== 0 && i !== 1) throw new Error(`wasm backend: no job area ${i} (there are two)`);
  const at = 3840 + 128 * i;
  return { gen: at, ticket: at + 4, done: at + 8, parts: at + 12, chunk: at + 16, stop: at + 20, fn: at + 24, args: at + 32 };
}
/** Arguments a column-split kernel may take before its chunk (p0, p1). */
const PAR_ARGS = 8;

export interface EmitOptions extends CompileOptions {
  readonly threads: number;
  readonly relaxed: boolean;
  /** Which job area (jobArea) the threads use; default 0. */
  readonly jobArea?: number;
}

export interface Emitted {
  readonly binary: Uint8Array;
  readonly text: string;
  readonly nodes: readonly Node[];
  readonly layout: Layout;
  readonly plan: MemoryPlanLike | undefined;
  /** Run-time symbols, in the order `run` takes them. */
  readonly symbols: readonly string[];
  readonly consts: readonly { at: number; values: readonly number[]; dtype: string; count: number }[];
  readonly staticBytes: number;
  readonly notes: readonly string[];
}

function collectSymbols(nodes: readonly Node[], into: Set<string>): void {
  const walk = (v: unknown): void => {
    if (typeof v === 'object' && v !== null && 'terms' in v && 'offset' in v) dimSymbols(v as Dim).forEach((s) => into.add(s));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null && 'nodes' in v) collectSymbols((v as FusedBody).nodes, into);
  };
  for (const n of nodes) {
    n.type.shape.forEach(walk);
    Object.values(n.attrs).forEach(walk);
  }
}

export function emitModule(b: Binaryen, g: Graph, opts: EmitOptions): Emitted {
  const spec = opts.specialize ?? {};
  const notes: string[] = [];
  const { nodes, sched } = expand(g, notes);
  const plan = readPlan(g, BACKEND);
  const lay = layout(g, nodes, sched, plan, notes, !opts.debugValues);
  const syms = new Set<string>();
  collectSymbols(nodes, syms);
  const runtime = [...syms].filter((s) => spec[s] === undefined).sort();
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const original = new Set(g.nodes.map((n) => n.id));
  const causal = opts.debugValues ? new Map<number, CausalRows>() : causalRows(nodes, new Set(g.outputs.map((o) => o.value)));
  const zeros = opts.debugValues ? new Map<number, CausalRows>() : causalZeros(nodes);

  const m = new b.Module();
  const shared = opts.threads > 1;
  m.setFeatures(b.Features.SIMD128 | b.Features.BulkMemory | b.Features.BulkMemoryOpt | b.Features.NontrappingFPToInt | b.Features.SignExt | b.Features.MutableGlobals | (shared ? b.Features.Atomics : 0) | (opts.relaxed ? b.Features.RelaxedSIMD : 0));
  m.setMemory(1, 65536, null, [], shared, false, 'mem');
  m.addMemoryImport('mem', 'env', 'mem', shared);
  const f64 = b.createType([b.f64]);
  for (const fn of ['exp', 'log', 'sin', 'cos', 'tanh']) m.addFunctionImport(fn, 'env', fn, f64, b.f64);
  m.addFunctionImport('pow', 'env', 'pow', b.createType([b.f64, b.f64]), b.f64);
  m.addFunctionImport('powi', 'env', 'powi', b.createType([b.i32, b.i32]), b.i32);
  m.addFunctionImport('fail', 'env', 'fail', b.createType([b.i32, b.i32, b.i32, b.i32, b.i32]), b.none);
  if (opts.debugValues) m.addFunctionImport('dbg', 'env', 'dbg', b.createType([b.i32, b.i32, b.i32]), b.none);
  if (opts.profile) m.addFunctionImport('prof', 'env', 'prof', b.createType([b.i32]), b.none);

  const f = new Fn(b, m, runtime.map(() => b.i32));
  const symLocal = new Map(runtime.map((s, i) => [s, i]));
  const dim = (d: Dim): Expr => {
    if (typeof d === 'number') return m.i32.const(d);
    let k = d.offset;
    let e: Expr | undefined;
    for (const [s, c] of Object.entries(d.terms)) {
      const fixed = spec[s];
      if (fixed !== undefined) {
        k += c * fixed;
        continue;
      }
      const t = c === 1 ? f.get(symLocal.get(s)!) : m.i32.mul(m.i32.const(c), f.get(symLocal.get(s)!));
      e = e === undefined ? t : m.i32.add(e, t);
    }
    if (e === undefined) return m.i32.const(k);
    return k === 0 ? e : m.i32.add(e, m.i32.const(k));
  };
  const numel = (shape: readonly Dim[]): Expr => {
    let k = 1;
    const rest: Dim[] = [];
    for (const d of shape) {
      const v = isStatic(d) ? d : undefined;
      if (v !== undefined) k *= v;
      else rest.push(d);
    }
    return rest.reduce<Expr>((e, d) => m.i32.mul(e, dim(d)), m.i32.const(k));
  };
  const addrOf = (id: number): Expr => {
    const r = rootOf(lay.homes, id);
    const h = lay.homes.get(r)!;
    if (h.kind === 'static') return m.i32.const(h.at);
    if (h.kind === 'arena') return m.i32.const(lay.arenaAt + h.offset);
    if (h.kind === 'slot') return m.i32.load(0, 4, m.i32.const(h.slot * 4));
    throw new Error('unreachable: alias root');
  };

  const helpers = new Set<string>();
  /** Column-split kernels called through par_run, by job id. */
  const parFns: { name: string; args: number }[] = [];
  let staticTop = lay.staticBytes;
  const consts: { at: number; values: readonly number[]; dtype: string; count: number }[] = [];
  for (const n of nodes) {
    const h = lay.homes.get(n.id)!;
    if (n.op === 'const' && h.kind === 'static') consts.push({ at: h.at, values: n.attrs['value'] as number[], dtype: n.type.dtype, count: h.bytes / 4 });
  }
  const relaxedMadd = (x: Expr, y: Expr, z: Expr): Expr => (b as unknown as { _BinaryenSIMDTernary: (...a: number[]) => number })._BinaryenSIMDTernary(m.ptr, b.RelaxedMaddVecF32x4 as unknown as number, x, y, z);

  /** Aliased nodes whose kernel still runs: an update_slice into its state, a view's bounds check. */
  const writesInPlace = (id: number) => lay.inPlace.has(id) || lay.views.has(id);
  const ctxFor = (n: Node): WasmCtx => {
    const ctx: WasmCtx = {
      b,
      m,
      f,
      node: n,
      types: n.inputs.map((i) => byId.get(i)!.type),
      out: () => addrOf(n.id),
      in: (i) => {
        const src = n.inputs[i]!;
        const ph = lay.params.get(src);
        if (ph && lay.packedUse.has(`${n.id}:${i}`)) return m.i32.const(ph.packed!.at);
        if (ph && lay.packedNNUse.has(`${n.id}:${i}`)) return m.i32.const(ph.packedNN!.at);
        return addrOf(src);
      },
      packed: (i) => lay.packedUse.has(`${n.id}:${i}`) || lay.packedNNUse.has(`${n.id}:${i}`),
      swapped: (i) => lay.swaps.has(n.inputs[i]!),
      causalRows: causal.get(n.id),
      causalZeros: zeros.get(n.id),
      scratch: () => {
        if (lay.scratch === undefined) throw new Error('wasm backend: a kernel asked for scratch the layout did not reserve');
        return m.i32.load(0, 4, m.i32.const(lay.scratch.slot * 4));
      },
      ropeTable: (base, D) => {
        const t = lay.ropeTables.get(ropeKey(base, D));
        if (t === undefined) throw new Error('wasm backend: a kernel asked for a rope table the layout did not reserve');
        return m.i32.load(0, 4, m.i32.const(t.slot * 4));
      },
      inPlace: writesInPlace(n.id),
      dim,
      numel,
      helper: (name, build) => {
        if (!helpers.has(name)) {
          helpers.add(name);
          build();
        }
        return name;
      },
      fail: (kind, ...details) => m.call('fail', [m.i32.const(kind), m.i32.const(n.id), ...details, ...new Array(3 - details.length).fill(0).map(() => m.i32.const(0))], b.none),
      constData: (values, dtype) => {
        const at = staticTop;
        staticTop += Math.ceil((values.length * 4) / 64) * 64 + 64;
        consts.push({ at, values, dtype, count: values.length });
        return at;
      },
      parallel: (fn, args, parts) => {
        if (!shared) return m.call(fn, [...args, m.i32.const(0), m.i32.const(parts)], b.none);
        if (args.length > PAR_ARGS) throw new Error(`wasm backend: parallel kernel ${fn} takes ${args.length} arguments, at most ${PAR_ARGS}`);
        let id = parFns.findIndex((p) => p.name === fn);
        if (id < 0) id = parFns.push({ name: fn, args: args.length }) - 1;
        const pad = Array.from({ length: PAR_ARGS - args.length }, () => m.i32.const(0));
        return m.call('par_run', [m.i32.const(id), ...args, ...pad, m.i32.const(parts)], b.none);
      },
      madd: (x, y, z) => (opts.relaxed ? relaxedMadd(x, y, z) : m.f32x4.add(m.f32x4.mul(x, y), z)),
    };
    return ctx;
  };

  const body: Expr[] = opts.profile ? [m.call('prof', [m.i32.const(-1)], b.none)] : [];
  for (const n of nodes) {
    const h = lay.homes.get(n.id)!;
    const isSource = n.op === 'input' || n.op === 'param' || n.op === 'state' || n.op === 'const';
    const skip = isSource || (h.kind === 'alias' && !writesInPlace(n.id));
    if (!skip) {
      const kernel = n.op === 'fused' ? FUSED_KERNELS[String(n.attrs['pattern'])]! : KERNELS[n.op]!;
      body.push(...kernel(ctxFor(n)));
      if (opts.profile) body.push(m.call('prof', [m.i32.const(n.id)], b.none));
    }
    if (opts.debugValues && original.has(n.id) && !isSource)
      body.push(m.call('dbg', [m.i32.const(n.id), addrOf(n.id), numel(n.type.shape)], b.none));
  }
  f.finish('run', b.none, body.length ? body : [m.nop()]);
  m.addFunctionExport('run', 'run');
  if (shared) buildThreading(b, m, opts.threads, parFns, jobArea(opts.jobArea ?? 0));

  if (!m.validate()) throw new Error('wasm backend: the emitted module does not validate');
  m.optimize();
  const binary = m.emitBinary();
  const text = m.emitText();
  m.dispose();
  return { binary, text, nodes, layout: lay, plan, symbols: runtime, consts, staticBytes: staticTop, notes };
}

/**
 * par_run(job, args[8], parts) (the caller's side) and work(gen) (a worker's side) over the shared
 * ticket: `job` picks the column-split kernel, called as fn(args…, p0, p1) on each claimed chunk.
 */
function buildThreading(b: Binaryen, m: Mod, threads: number, parFns: readonly { name: string; args: number }[], job: JobArea): void {
  const I = (v: number) => m.i32.const(v);
  const argAt = (i: number) => m.i32.load(0, 4, I(job.args + 4 * i));
  /** The kernel of the posted job over chunk [s, e). */
  const dispatch = (f: Fn, s: number, e: number): Expr =>
    parFns.reduceRight<Expr>(
      (rest, p, id) => m.if(m.i32.eq(m.i32.load(0, 4, I(job.fn)), I(id)), m.call(p.name, [...Array.from({ length: p.args }, (_, i) => argAt(i)), f.get(s), f.get(e)], b.none), rest),
      m.nop(),
    );
  /** Claim chunks of generation g until none are left; each done chunk is added to `done`. */
  const claimLoop = (f: Fn, g: () => Expr): Expr => {
    const [t, s, e] = [f.local(b.i32), f.local(b.i32), f.local(b.i32)];
    return m.block('claimed', [
      m.loop('claim', m.block(null, [
        f.set(t, m.i32.atomic.load(0, I(job.ticket))),
        m.br('claimed', m.i32.ne(m.i32.shr_u(f.get(t), I(16)), m.i32.and(g(), I(0xffff)))),
        f.set(s, m.i32.and(f.get(t), I(0xffff))),
        m.br('claimed', m.i32.ge_u(f.get(s), m.i32.load(0, 4, I(job.parts)))),
        m.br('claim', m.i32.ne(m.i32.atomic.rmw.cmpxchg(0, I(job.ticket), f.get(t), m.i32.add(f.get(t), m.i32.load(0, 4, I(job.chunk)))), f.get(t))),
        f.set(e, m.i32.add(f.get(s), m.i32.load(0, 4, I(job.chunk)))),
        f.set(e, m.select(m.i32.lt_u(f.get(e), m.i32.load(0, 4, I(job.parts))), f.get(e), m.i32.load(0, 4, I(job.parts)))),
        dispatch(f, s, e),
        m.drop(m.i32.atomic.rmw.add(0, I(job.done), m.i32.sub(f.get(e), f.get(s)))),
        m.br('claim'),
      ])),
    ]);
  };
  // caller: post the job, wake the workers, claim chunks, then wait for the workers' chunks
  const p = new Fn(b, m, [b.i32, ...Array.from({ length: PAR_ARGS }, () => b.i32), b.i32]);
  const gen = p.local(b.i32);
  const PARTS = PAR_ARGS + 1;
  p.finish('par_run', b.none, [
    m.i32.store(0, 4, I(job.fn), p.get(0)),
    ...Array.from({ length: PAR_ARGS }, (_, i) => m.i32.store(0, 4, I(job.args + 4 * i), p.get(i + 1))),
    m.i32.store(0, 4, I(job.parts), p.get(PARTS)),
    m.i32.store(0, 4, I(job.chunk), m.select(m.i32.gt_s(m.i32.div_u(p.get(PARTS), I(4 * threads)), I(1)), m.i32.div_u(p.get(PARTS), I(4 * threads)), I(1))),
    m.i32.atomic.store(0, I(job.done), I(0)),
    p.set(gen, m.i32.add(m.i32.atomic.load(0, I(job.gen)), I(1))),
    m.i32.atomic.store(0, I(job.ticket), m.i32.shl(m.i32.and(p.get(gen), I(0xffff)), I(16))),
    m.i32.atomic.store(0, I(job.gen), p.get(gen)),
    m.drop(m.memory.atomic.notify(I(job.gen), I(threads))),
    claimLoop(p, p.at(gen)),
    m.block('joined', [m.loop('join', m.br('join', m.i32.lt_u(m.i32.atomic.load(0, I(job.done)), p.get(PARTS))))]),
  ]);
  const w = new Fn(b, m, [b.i32]);
  w.finish('work', b.none, [claimLoop(w, w.at(0))]);
  m.addFunctionExport('work', 'work');
}
