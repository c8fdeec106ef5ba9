/**
 * The wasm backend: a Program becomes one WebAssembly module (emit.ts) over one linear memory
 * (layout.ts). The host side here binds weights (copied in once; [out, in] weights of transB
 * matmuls also repacked into 16-column panels), places each step's inputs and run-time sized
 * values, calls the module's `run` once, and copies the outputs out.
 *
 * State (KV caches) stays resident in the module's memory between steps: a state array is
 * copied in only when it is not the array this executable last synchronised (or when a wasm
 * executable has written to it since). In-place `state:` outputs are the caller's arrays with
 * just the updated rows written back. So a state array must change only through wasm runs — to
 * reset a cache, hand in a new array.
 */
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { type Dim, evalDim, isStatic, shapeToString } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph, Node } from '../../graph/graph.js';
import type { Backend, CompileOptions, DebugRun, Executable, HostArray, RunArgs } from '../backend.js';
import { type Emitted, emitModule } from './emit.js';
import { type Binaryen, loadBinaryen } from './fn.js';
import { FAIL } from './kernels/kernel.js';
import { opName } from '../profile.js';
import { BACKEND, FUSED, numelStatic, rootOf, SCRATCH_ID } from './layout.js';
import { ROPE_ID0, RopeTables } from './rope-table.js';
import { WorkerPool } from './threads.js';
import { WA } from './wasm-api.js';

export interface WasmBackendOptions {
  /** Threads for the matmul/matvec kernels (default: the core count). */
  readonly threads?: number;
  /** Relaxed-SIMD fused multiply-add: 'auto' (default) uses it when the engine has it. */
  readonly relaxedSimd?: 'auto' | boolean;
}

let relaxedKnown: boolean | undefined;
/** Whether the engine validates a module using relaxed madd (after asking V8 to enable it). */
export function hasRelaxedSimd(b: Binaryen): boolean {
  if (relaxedKnown !== undefined) return relaxedKnown;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // not V8: validate() below decides
  }
  const m = new b.Module();
  m.setFeatures(b.Features.SIMD128 | b.Features.RelaxedSIMD);
  const z = () => m.v128.const(new Array(16).fill(0));
  const madd = (b as unknown as { _BinaryenSIMDTernary: (...a: number[]) => number })._BinaryenSIMDTernary(m.ptr, b.RelaxedMaddVecF32x4 as unknown as number, z(), z(), z());
  m.addFunction('f', b.none, b.v128, [], madd);
  m.addFunctionExport('f', 'f');
  const bytes = m.emitBinary();
  m.dispose();
  const ok = WA.validate(bytes);
  relaxedKnown = ok;
  return ok;
}

/** Which wasm executable last wrote a state array (version bumps on every write-back). */
const VERSION = new WeakMap<HostArray, number>();
const PAGE = 65536;
const align = (x: number) => Math.ceil(x / 64) * 64;

export function createWasmBackend(opts: WasmBackendOptions = {}): Backend {
  const threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
  return {
    name: BACKEND,
    caps: { fusedPatterns: [...FUSED], simd: true, threads },
    async compile(program: Graph, copts: CompileOptions = {}): Promise<Executable> {
      const b = await loadBinaryen();
      const relaxed = opts.relaxedSimd === 'auto' || opts.relaxedSimd === undefined ? hasRelaxedSimd(b) : opts.relaxedSimd && hasRelaxedSimd(b);
      const e = emitModule(b, program, { ...copts, threads, relaxed });
      return instantiate(program, e, copts, threads);
    },
  };
}

/** The default: threads = core count, relaxed SIMD when available. */
export const wasmBackend: Backend = createWasmBackend();

const fail = (code: 'K1017' | 'K1009', msg: string) => new KilnError(code, msg);

function instantiate(g: Graph, e: Emitted, copts: CompileOptions, threads: number): Executable {
  const shared = threads > 1;
  const memory = new WA.Memory({ initial: Math.ceil((e.staticBytes + PAGE) / PAGE), maximum: 65536, shared });
  const byId = new Map(e.nodes.map((n) => [n.id, n]));
  let dbg: Map<number, HostArray> | undefined;
  const times = new Map<number, { ms: number; runs: number }>();
  let last = 0;
  const env = {
    mem: memory,
    exp: Math.exp,
    log: Math.log,
    sin: Math.sin,
    cos: Math.cos,
    tanh: Math.tanh,
    pow: Math.pow,
    powi: (x: number, y: number) => Math.pow(x, y) | 0,
    fail: (kind: number, id: number, a: number, b: number, c: number) => {
      const n = byId.get(id)!;
      const where = `%${id}${n.scope ? ` (${n.scope})` : ''} ${n.op}`;
      if (kind === FAIL.gatherIndex) throw fail('K1017', `${where}: index ${a} at position ${b} is outside [0, ${c})`);
      const ax = n.attrs['axis'] as number;
      const rank = byId.get(n.inputs[0]!)!.type.shape.length;
      throw fail('K1009', `${where}: [${a}, ${b}) is outside axis ${ax < 0 ? ax + rank : ax} of size ${c}`);
    },
    dbg: (id: number, addr: number, count: number) => {
      const n = byId.get(id)!;
      const T = n.type.dtype === 'i32' ? Int32Array : Float32Array;
      dbg?.set(id, new T(memory.buffer as ArrayBuffer, addr, count).slice());
    },
    prof: (id: number) => {
      const now = performance.now();
      if (id >= 0) {
        const t = times.get(id) ?? { ms: 0, runs: 0 };
        t.ms += now - last;
        t.runs++;
        times.set(id, t);
      }
      last = now;
    },
  };
  const module = new WA.Module(e.binary);
  const instance = new WA.Instance(module, { env });
  const run = instance.exports['run'] as (...syms: number[]) => void;
  const pool = shared ? new WorkerPool(module, memory, threads - 1) : undefined;

  const f32 = () => new Float32Array(memory.buffer as ArrayBuffer);
  const i32 = () => new Int32Array(memory.buffer as ArrayBuffer);
  for (const c of e.consts) {
    const view = c.dtype === 'i32' ? i32() : f32();
    for (let i = 0; i < c.count; i++) view[c.at / 4 + i] = c.values.length === 1 ? c.values[0]! : c.values[i]!;
  }

  const sources = { input: [] as Node[], param: [] as Node[], state: [] as Node[] };
  for (const n of e.nodes) if (n.op === 'input' || n.op === 'param' || n.op === 'state') sources[n.op].push(n);
  const nameOf = (n: Node) => String(n.attrs['name']);
  const paramByName = new Map(sources.param.map((n) => [nameOf(n), n]));
  const bound = new Set<string>();
  const ropeTables = new RopeTables([...e.layout.ropeTables.values()]);
  const resident = new Map<string, { arr: HostArray; ver: number }>();
  const spec = copts.specialize ?? {};
  /** debugValues only: the bound weights, reported as the params' values. */
  const hostParams = new Map<number, HostArray>();
  /** Params sized by run-time symbols: copied in at each run. */
  const dynParams = new Map<number, HostArray>();

  const checkArray = (kind: string, n: Node, x: HostArray | undefined, size: number, env: Record<string, number>): HostArray => {
    const want = n.type.dtype === 'i32' ? Int32Array : Float32Array;
    const shown = `${n.type.dtype}${shapeToString(n.type.shape)}${n.type.shape.every(isStatic) ? '' : ` = [${n.type.shape.map((d) => evalDim(d, env)).join(', ')}]`}`;
    if (x === undefined) throw fail('K1017', `no value given for ${kind} '${nameOf(n)}' (${shown})`);
    if (!(x instanceof want)) throw fail('K1017', `${kind} '${nameOf(n)}': expected a ${want.name} for ${shown}, given ${(x as object)?.constructor?.name ?? typeof x}`);
    if (x.length !== size) throw fail('K1017', `${kind} '${nameOf(n)}': expected ${size} values for ${shown}, given ${x.length}`);
    return x;
  };

  function setWeights(params: Readonly<Record<string, HostArray>>): void {
    const names = Object.keys(params);
    const unknown = names.filter((k) => !paramByName.has(k));
    if (unknown.length)
      throw fail('K1017', `unknown param${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => `'${k}'`).join(', ')}; this model's params are ${[...paramByName.keys()].slice(0, 5).map((k) => `'${k}'`).join(', ')}${paramByName.size > 5 ? ', …' : ''}`);
    for (const k of names) {
      const n = paramByName.get(k)!;
      const size = numelStatic(n);
      if (size === undefined) {
        const want = n.type.dtype === 'i32' ? Int32Array : Float32Array;
        if (!(params[k] instanceof want)) throw fail('K1017', `param '${k}': expected a ${want.name} for ${n.type.dtype}${shapeToString(n.type.shape)}, given ${(params[k] as object)?.constructor?.name ?? typeof params[k]}`);
      } else checkArray('param', n, params[k], size, {});
    }
    for (const k of names) {
      const n = paramByName.get(k)!;
      const w = params[k]!;
      const ph = e.layout.params.get(n.id)!;
      if (numelStatic(n) === undefined) dynParams.set(n.id, w);
      if (ph.raw !== undefined) (n.type.dtype === 'i32' ? i32() : f32()).set(w as never, ph.raw / 4);
      if (ph.packed) {
        const { at, N, K } = ph.packed;
        const dst = f32();
        const base = at / 4;
        for (let p = 0; p < Math.ceil(N / 16); p++)
          for (let j = 0; j < 16; j++) {
            const n0 = p * 16 + j;
            for (let k = 0; k < K; k++) dst[base + (p * K + k) * 16 + j] = n0 < N ? w[n0 * K + k]! : 0;
          }
      }
      bound.add(k);
      if (copts.debugValues) hostParams.set(n.id, w);
    }
  }

  function bindSymbols(args: RunArgs): Record<string, number> {
    const given = args.symbols ?? {};
    const out: Record<string, number> = { ...spec };
    for (const [s, v] of Object.entries(spec)) if (given[s] !== undefined && given[s] !== v) throw fail('K1017', `this program is compiled for ${s} = ${v}, given ${s} = ${given[s]}`);
    for (const s of e.symbols) {
      let v = given[s];
      if (v === undefined)
        for (const n of sources.input) {
          const sh = n.type.shape;
          const k = sh.findIndex((d) => typeof d !== 'number' && d.offset === 0 && Object.keys(d.terms).length === 1 && d.terms[s] === 1);
          if (k < 0 || !sh.every((d, i) => i === k || isStatic(d) || Object.keys((d as Exclude<Dim, number>).terms).every((t) => spec[t] !== undefined))) continue;
          const x = args.inputs?.[nameOf(n)];
          if (x === undefined) continue;
          const per = sh.reduce<number>((a, d, i) => (i === k ? a : a * evalDim(d, spec)), 1);
          v = Math.floor(x.length / per);
          break;
        }
      if (v === undefined) throw fail('K1017', `no value for dim symbol '${s}' (pass it in symbols)`);
      if (!Number.isInteger(v) || v < 0) throw fail('K1017', `dim symbol '${s}' must be a non-negative integer, given ${v}`);
      const max = e.plan?.bounds[s];
      if (max !== undefined && v > max) throw fail('K1017', `${s} = ${v} is past ${max}, the largest the memory plan allows`);
      out[s] = v;
    }
    return out;
  }

  function step(args: RunArgs, debug?: Map<number, HostArray>): Record<string, HostArray> {
    const missing = [...paramByName.keys()].filter((k) => !bound.has(k));
    if (missing.length) throw fail('K1017', `weights not bound: ${missing.slice(0, 5).map((k) => `'${k}'`).join(', ')}${missing.length > 5 ? ', …' : ''} (call setWeights first)`);
    const env = bindSymbols(args);
    const size = (n: Node) => {
      let s = 1;
      for (const d of n.type.shape) {
        const v = evalDim(d, env);
        if (v < 0) throw fail('K1017', `%${n.id} ${n.op}: dim ${shapeToString(n.type.shape)} is negative for ${JSON.stringify(env)}`);
        s *= v;
      }
      return s;
    };
    const inputs = sources.input.map((n) => checkArray('input', n, args.inputs?.[nameOf(n)], size(n), env));
    const states = sources.state.map((n) => checkArray('state', n, args.state?.[nameOf(n)], size(n), env));
    // place the run-time sized values
    const words = new Int32Array(e.layout.slots.length);
    const grew = ropeTables.fit(env);
    let top = align(e.staticBytes) + ropeTables.bytes;
    const scratchElems = () => Math.max(0, ...(e.layout.scratch?.elems ?? []).map((d) => evalDim(d, env)));
    e.layout.slots.forEach((id, slot) => {
      if (id <= ROPE_ID0) return;
      words[slot] = top;
      top = align(top + (id === SCRATCH_ID ? scratchElems() : size(byId.get(id)!)) * 4 + 16);
    });
    for (const n of e.nodes) {
      const h = e.layout.homes.get(n.id)!;
      if (h.kind === 'arena' && size(n) > h.cap)
        throw fail('K1017', `value %${n.id} needs ${size(n)} elements, the memory plan has room for ${h.cap}: the symbols are past their planned bounds (is pos + seq above maxSeqLen?)`);
    }
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / PAGE));
    ropeTables.place(align(e.staticBytes), words, memory.buffer as ArrayBuffer, grew);
    i32().set(words, 0);
    const addr = (id: number): number => {
      const h = e.layout.homes.get(rootOf(e.layout.homes, id))!;
      if (h.kind === 'static') return h.at;
      if (h.kind === 'arena') return e.layout.arenaAt + h.offset;
      if (h.kind === 'slot') return words[h.slot]!;
      throw new Error('unreachable');
    };
    const view = (n: Node) => (n.type.dtype === 'i32' ? i32() : f32());
    sources.input.forEach((n, i) => view(n).set(inputs[i]! as never, addr(n.id) / 4));
    for (const [id, w] of dynParams) view(byId.get(id)!).set(checkArray('param', byId.get(id)!, w, size(byId.get(id)!), env) as never, addr(id) / 4);
    sources.state.forEach((n, i) => {
      const arr = states[i]!;
      const r = resident.get(nameOf(n));
      const isStaticHome = e.layout.homes.get(n.id)!.kind === 'static';
      if (isStaticHome && r && r.arr === arr && r.ver === (VERSION.get(arr) ?? 0)) return;
      view(n).set(arr as never, addr(n.id) / 4);
      if (!VERSION.has(arr)) VERSION.set(arr, 0);
      resident.set(nameOf(n), { arr, ver: VERSION.get(arr)! });
    });
    if (debug) {
      sources.input.forEach((n, i) => debug.set(n.id, inputs[i]!.slice()));
      sources.state.forEach((n, i) => debug.set(n.id, states[i]!.slice()));
      for (const [id, w] of hostParams) debug.set(id, w);
      for (const n of e.nodes) if (n.op === 'const') debug.set(n.id, view(n).slice(addr(n.id) / 4, addr(n.id) / 4 + size(n)));
    }
    dbg = debug;
    try {
      run(...e.symbols.map((s) => env[s]!));
    } finally {
      dbg = undefined;
    }
    const out: Record<string, HostArray> = {};
    for (const o of g.outputs) {
      const n = byId.get(o.value)!;
      if (e.layout.inPlace.has(o.value) && o.name.startsWith('state:')) {
        const st = byId.get(n.inputs[0]!)!;
        const arr = states[sources.state.indexOf(st)]!;
        writeBack(n, byId.get(n.inputs[1]!)!, arr, addr(st.id), env, view(st));
        const v = (VERSION.get(arr) ?? 0) + 1;
        VERSION.set(arr, v);
        resident.set(nameOf(st), { arr, ver: v });
        out[o.name] = arr;
        continue;
      }
      const at = addr(o.value) / 4;
      out[o.name] = view(n).slice(at, at + size(n));
    }
    return out;
  }

  /** Copy the rows an in-place update_slice wrote back into the caller's state array. */
  function writeBack(n: Node, upd: Node, arr: HostArray, at: number, env: Record<string, number>, mem: HostArray): void {
    const shape = byId.get(n.inputs[0]!)!.type.shape.map((d) => evalDim(d, env));
    const rank = shape.length;
    const raw = n.attrs['axis'] as number;
    const ax = raw < 0 ? raw + rank : raw;
    const start = evalDim(n.attrs['start'] as Dim, env);
    const len = evalDim(upd.type.shape[ax]!, env);
    const inner = shape.slice(ax + 1).reduce((a, d) => a * d, 1);
    const outer = shape.slice(0, ax).reduce((a, d) => a * d, 1);
    const base = at / 4;
    for (let r = 0; r < outer; r++) {
      const from = (r * shape[ax]! + start) * inner;
      arr.set(mem.subarray(base + from, base + from + len * inner) as never, from);
    }
  }

  const exe: Executable = {
    backend: BACKEND,
    source: e.text,
    binary: e.binary,
    setWeights,
    run: (args) => step(args),
    dispose: () => pool?.dispose(),
    ...(copts.profile && {
      profile: () => [...times].map(([id, t]) => ({ id, op: opName(byId.get(id)!), scope: byId.get(id)!.scope, ms: t.ms, runs: t.runs })),
    }),
  };
  if (!copts.debugValues) return exe;
  return {
    ...exe,
    runDebug(args: RunArgs): DebugRun {
      const values = new Map<number, HostArray>();
      const outputs = step(args, values);
      return { outputs, values };
    },
  };
}
