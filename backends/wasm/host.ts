/**
 * The wasm executable's host side, with no platform API (no node: imports), so that one
 * implementation runs in Node (index.ts adds threads, the relaxed-SIMD flag and profiling) and in
 * a browser (the bundle scripts/build-web.ts writes). It needs the module and its manifest: what
 * the host must know of the program and its memory layout, JSON-serialisable (manifest.ts builds
 * it from the emitter's output).
 *
 * The host binds weights (copied in once; [out, in] weights of transB matmuls also repacked into
 * 16-column panels), places each step's inputs and run-time sized values, calls the module's
 * `run` once, and copies the outputs out. State (KV caches) stays resident in the module's memory
 * between steps: a state array is copied in only when it is not the array this executable last
 * synchronised (or when a wasm executable has written to it since). In-place `state:` outputs are
 * the caller's arrays with just the updated rows written back. So a state array must change only
 * through wasm runs — to reset a cache, hand in a new array.
 */
import { type Dim, evalDim, isStatic, shapeToString } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import type { HostArray, RunArgs } from '../backend.js';
import { FAIL } from './kernels/kernel.js';
import type { Home } from './layout.js';
import { type RopeTable, RopeTables } from './rope-table.js';
import { WA, type WasmInstance, type WasmMemory, type WasmModule } from './wasm-api.js';

export const MANIFEST_FORMAT = 'kiln-wasm-1';

/** A scratch size in elements: a dim, or a sum of products of dims ([[rows], [B, seq]] is rows + B·seq). */
export type ScratchSize = Dim | readonly (readonly Dim[])[];

export function scratchSize(s: ScratchSize, env: Readonly<Record<string, number>>): number {
  if (!Array.isArray(s)) return evalDim(s as Dim, env);
  let sum = 0;
  for (const term of s as readonly (readonly Dim[])[]) sum += term.reduce<number>((p, d) => p * evalDim(d, env), 1);
  return sum;
}

export interface WasmManifest {
  readonly format: typeof MANIFEST_FORMAT;
  /** Threads the module was built for: above 1 it imports a shared memory (index.ts runs the workers). */
  readonly threads: number;
  /** Which job area (emit.ts jobArea) its threads post to, when not the first. */
  readonly jobArea?: number;
  /** Run-time symbols, in the order `run` takes them; `specialize`: those fixed at compile time. */
  readonly symbols: readonly string[];
  readonly specialize: Readonly<Record<string, number>>;
  /** The memory plan's upper bounds of the symbols. */
  readonly bounds: Readonly<Record<string, number>>;
  readonly staticBytes: number;
  readonly arenaAt: number;
  /** Every node of the module, in schedule order. */
  readonly nodes: readonly WasmNode[];
  /** Per slot-table word: the node it places, the scratch area, or a rope table (placed by RopeTables). */
  readonly slots: readonly (number | 'scratch' | 'rope')[];
  /**
   * The floats each scratch user needs (the host reserves the largest): a dim, or a sum of
   * products of dims (scatter_add's rows + indices).
   */
  readonly scratch: readonly ScratchSize[];
  /** Each param's raw (row-major) address and/or 16-column packed copy. */
  readonly params: readonly { readonly id: number; readonly raw?: number; readonly packed?: { at: number; N: number; K: number }; readonly packedNN?: { at: number; N: number; K: number } }[];
  /** update_slice nodes written into their state: the rows [start, start + len) of `axis` come back. */
  readonly inPlace: readonly { readonly id: number; readonly state: number; readonly axis: number; readonly start: Dim; readonly len: Dim }[];
  readonly ropeTables: readonly RopeTable[];
  /** Values written into static memory once; non-finite values and −0 as strings (JSON has no such numbers). */
  readonly consts: readonly { readonly at: number; readonly dtype: string; readonly count: number; readonly values: readonly (number | string)[] }[];
  readonly outputs: readonly { readonly name: string; readonly value: number }[];
}

export interface WasmNode {
  readonly id: number;
  readonly op: string;
  readonly dtype: string;
  readonly shape: readonly Dim[];
  readonly home: Home;
  /** input, param, state: the name it is bound by. */
  readonly name?: string;
  readonly scope?: string;
  /** The normalised axis of slice-like nodes (for the module's bounds errors). */
  readonly axis?: number;
}

/** JSON keeps finite numbers exactly; the rest travel as strings. */
export const encodeNumber = (v: number): number | string => (Object.is(v, -0) ? '-0' : Number.isFinite(v) ? v : String(v));
const decodeNumber = (v: number | string): number => (typeof v === 'number' ? v : v === '-0' ? -0 : Number(v));

/** Which wasm executable last wrote a state array (version bumps on every write-back), across executables. */
const VERSION = new WeakMap<HostArray, number>();

/** Whether every element's bits are 0 (−0 is not: its bits are not). */
function allZero(a: HostArray): boolean {
  const w = new Int32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}
const PAGE = 65536;
const align = (x: number) => Math.ceil(x / 64) * 64;
const fail = (code: 'K1017' | 'K1009', msg: string) => new KilnError(code, msg);

/** f32x4.relaxed_madd in the smallest module: whether the engine has relaxed SIMD. */
const RELAXED_PROBE = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 6, 1, 0x60, 1, 0x7b, 1, 0x7b, 3, 2, 1, 0, 10, 13, 1, 11, 0, 0x20, 0, 0x20, 0, 0x20, 0, 0xfd, 0x85, 2, 0x0b];
export const relaxedSimdSupported = (): boolean => WA.validate(new Uint8Array(RELAXED_PROBE));

/** The most pages a wasm32 memory holds: 4 GiB. */
const MAX_PAGES = 65536;
const GiB = 2 ** 30;

/** A program that needs more memory than wasm32 has: say so in sizes, not as an engine RangeError. */
function tooBig(bytes: number, m: WasmManifest): KilnError {
  const bounds = Object.entries(m.bounds).map(([k, v]) => `${k} ≤ ${v}`).join(', ');
  return new KilnError(
    'K1020',
    `the wasm program needs ${(bytes / GiB).toFixed(2)} GiB of memory (weights, KV cache and intermediates${bounds ? ` planned for ${bounds}` : ''}); a WebAssembly memory holds at most 4 GiB: give a smaller context (or a smaller prefill batch)`,
  );
}

/** The memory a module of this manifest imports: its static region plus a page, shared when threaded. */
export const wasmMemory = (m: WasmManifest): WasmMemory => {
  const initial = Math.ceil((m.staticBytes + PAGE) / PAGE);
  if (initial > MAX_PAGES) throw tooBig(m.staticBytes, m);
  return new WA.Memory({ initial, maximum: MAX_PAGES, shared: m.threads > 1 });
};

/**
 * What two hosts over one memory share: the memory, the rope tables written in it, and which state
 * arrays it holds. index.ts gives the decode program the prefill program's, so that one copy of
 * the weights serves both (their static layouts must be the same: `sameStaticLayout`).
 */
export interface SharedMemory {
  readonly memory: WasmMemory;
  readonly ropeTables: RopeTables;
  readonly resident: Map<string, { arr: HostArray; ver: number }>;
  /** States whose region nothing has written since the host made the memory: still all zeros. */
  readonly untouched: Set<string>;
  /** Params bound in this memory (by any host of the layout: their bytes are everyone's). */
  readonly bound: Set<string>;
}

/**
 * Whether two manifests put every weight, state, constant, rope table and the arena at the same
 * addresses (two programs of one graph do: specialising symbols changes the code, not the layout),
 * and, when threaded, post jobs to different job areas, so that they can run over one memory —
 * one at a time, as a Session runs them.
 */
export function sameStaticLayout(a: WasmManifest, b: WasmManifest): boolean {
  const statics = (m: WasmManifest) => m.nodes.filter((n) => n.home.kind === 'static').map((n) => [n.id, n.home]);
  const key = (m: WasmManifest) => JSON.stringify([m.threads, m.staticBytes, m.arenaAt, m.params, m.consts, m.ropeTables, statics(m)]);
  return key(a) === key(b) && (a.threads === 1 || (a.jobArea ?? 0) !== (b.jobArea ?? 0));
}

export interface WasmHostOptions {
  /** Default: a fresh `wasmMemory(manifest)`. */
  readonly memory?: WasmMemory;
  /** Run over another host's memory (see SharedMemory); takes the place of `memory`. */
  readonly share?: SharedMemory;
  /** More `env` imports (index.ts: prof). */
  readonly imports?: Readonly<Record<string, unknown>>;
  /** Keep the bound weights, so that a debug run reports them as the params' values. */
  readonly debugValues?: boolean;
}

export interface WasmHost {
  readonly memory: WasmMemory;
  /** This host's memory and its bookkeeping, for a host of the same layout to share. */
  readonly share: SharedMemory;
  /** Over another host's memory, with its weights: that host's setWeights binds this one's too. */
  readonly sharesWeights: boolean;
  readonly instance: WasmInstance;
  setWeights(params: Readonly<Record<string, HostArray>>): void;
  /** One step; with `debug`, every node's value by id lands there too. */
  run(args: RunArgs, debug?: Map<number, HostArray>): Record<string, HostArray>;
}

type WasmAsync = typeof WA & {
  instantiate(m: WasmModule, imports: Record<string, Record<string, unknown>>): Promise<WasmInstance>;
  compile(bytes: Uint8Array): Promise<WasmModule>;
};

/** Compile (asynchronously: browsers refuse large modules synchronously) and instantiate. */
export async function loadWasm(manifest: WasmManifest, binary: Uint8Array, opts: WasmHostOptions = {}): Promise<WasmHost> {
  return createWasmHost(manifest, await (WA as WasmAsync).compile(binary), opts);
}

/** What fetchWasmModel returns: an executable, with what another program needs to share its memory. */
export interface WasmPageModel {
  readonly backend: string;
  readonly device: string;
  readonly manifest: WasmManifest;
  readonly share: SharedMemory;
  /** Built with `shareWith`: the other model's setWeights binds this one's weights too. */
  readonly sharesWeights: boolean;
  setWeights: WasmHost['setWeights'];
  run(a: RunArgs): Record<string, HostArray>;
}

/**
 * A page's loader: fetch `<stem>.json` and its module — `<stem>.relaxed.wasm` where the engine has
 * relaxed SIMD, else `<stem>.wasm` — and return an executable (one thread: no shared memory
 * without cross-origin isolation). With `shareWith` a model of the same layout (the prefill
 * program, for the decode one), it runs over that model's memory: the weights are held once.
 */
export async function fetchWasmModel(stem: string, opts: { readonly shareWith?: WasmPageModel } = {}): Promise<WasmPageModel> {
  const get = async (url: string) => {
    const r = await fetch(url);
    if (!r.ok) throw new KilnError('K1013', `cannot load ${url} (${r.status})`);
    return r;
  };
  const relaxed = relaxedSimdSupported();
  const [manifest, bytes] = await Promise.all([get(`${stem}.json`).then((r) => r.json()), get(`${stem}${relaxed ? '.relaxed' : ''}.wasm`).then((r) => r.arrayBuffer())]);
  const M = checkManifest(manifest);
  const other = opts.shareWith;
  const host = await loadWasm(M, new Uint8Array(bytes), other && sameStaticLayout(other.manifest, M) ? { share: other.share } : {});
  return { backend: 'wasm', device: `${relaxed ? 'relaxed SIMD' : 'SIMD128'}, 1 thread`, manifest: M, share: host.share, sharesWeights: host.sharesWeights, setWeights: host.setWeights, run: (a) => host.run(a) };
}

export function checkManifest(m: unknown): WasmManifest {
  const f = (m as { format?: unknown } | null)?.format;
  if (f !== MANIFEST_FORMAT) throw new KilnError('K1014', `not a kiln wasm manifest (format ${JSON.stringify(f)}, expected '${MANIFEST_FORMAT}')`);
  return m as WasmManifest;
}

export async function createWasmHost(manifest: WasmManifest, module: WasmModule, opts: WasmHostOptions = {}): Promise<WasmHost> {
  const M = manifest;
  const memory = opts.share?.memory ?? opts.memory ?? wasmMemory(M);
  const byId = new Map(M.nodes.map((n) => [n.id, n]));
  let dbg: Map<number, HostArray> | undefined;
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
      if (kind === FAIL.targetIndex) throw fail('K1017', `${where}: target ${a} at position ${b} is outside [0, ${c})`);
      throw fail('K1009', `${where}: [${a}, ${b}) is outside axis ${n.axis} of size ${c}`);
    },
    dbg: (id: number, addr: number, count: number) => {
      const T = byId.get(id)!.dtype === 'i32' ? Int32Array : Float32Array;
      dbg?.set(id, new T(memory.buffer as ArrayBuffer, addr, count).slice());
    },
    prof: () => {},
    ...opts.imports,
  };
  const instance = await (WA as WasmAsync).instantiate(module, { env });
  const run = instance.exports['run'] as (...syms: number[]) => void;

  const f32 = () => new Float32Array(memory.buffer as ArrayBuffer);
  const i32 = () => new Int32Array(memory.buffer as ArrayBuffer);
  const view = (n: WasmNode) => (n.dtype === 'i32' ? i32() : f32());
  for (const c of M.consts) {
    const v = c.dtype === 'i32' ? i32() : f32();
    const values = c.values.map(decodeNumber);
    for (let i = 0; i < c.count; i++) v[c.at / 4 + i] = values.length === 1 ? values[0]! : values[i]!;
  }

  const sources = { input: [] as WasmNode[], param: [] as WasmNode[], state: [] as WasmNode[] };
  for (const n of M.nodes) if (n.op === 'input' || n.op === 'param' || n.op === 'state') sources[n.op].push(n);
  const nameOf = (n: WasmNode) => n.name!;
  /** Arena values sized by run-time symbols: checked against their planned room each run (the layout checked the rest). */
  const dynArena = M.nodes.filter((n) => n.home.kind === 'arena' && !n.shape.every(isStatic));
  const paramByName = new Map(sources.param.map((n) => [nameOf(n), n]));
  const paramHome = new Map(M.params.map((p) => [p.id, p]));
  const inPlace = new Map(M.inPlace.map((u) => [u.id, u]));
  const bound = opts.share?.bound ?? new Set<string>();
  const ropeTables = opts.share?.ropeTables ?? new RopeTables(M.ropeTables);
  const resident = opts.share?.resident ?? new Map<string, { arr: HostArray; ver: number }>();
  // A fresh memory is zeros: a state region there need not take a copy of an all-zero array (a new
  // Session's KV caches), which would touch every page of it first (stories110M at 1024 positions:
  // 75 MB, 440 ms of the first prefill). A memory the caller gave may hold anything.
  const untouched = opts.share?.untouched ?? new Set(opts.memory ? [] : sources.state.map(nameOf));
  const spec = M.specialize;
  const staticSize = (n: WasmNode) => (n.shape.every(isStatic) ? n.shape.reduce<number>((a, d) => a * (d as number), 1) : undefined);
  /** debugValues only: the bound weights, reported as the params' values. */
  const hostParams = new Map<number, HostArray>();
  /** Params sized by run-time symbols: copied in at each run. */
  const dynParams = new Map<number, HostArray>();

  const checkArray = (kind: string, n: WasmNode, x: HostArray | undefined, size: number | undefined, env: Record<string, number>): HostArray => {
    const want = n.dtype === 'i32' ? Int32Array : Float32Array;
    const shown = `${n.dtype}${shapeToString(n.shape)}${n.shape.every(isStatic) || size === undefined ? '' : ` = [${n.shape.map((d) => evalDim(d, env)).join(', ')}]`}`;
    if (x === undefined) throw fail('K1017', `no value given for ${kind} '${nameOf(n)}' (${shown})`);
    if (!(x instanceof want)) throw fail('K1017', `${kind} '${nameOf(n)}': expected a ${want.name} for ${shown}, given ${(x as object)?.constructor?.name ?? typeof x}`);
    if (size !== undefined && x.length !== size) throw fail('K1017', `${kind} '${nameOf(n)}': expected ${size} values for ${shown}, given ${x.length}`);
    return x;
  };

  function setWeights(params: Readonly<Record<string, HostArray>>): void {
    const names = Object.keys(params);
    const unknown = names.filter((k) => !paramByName.has(k));
    if (unknown.length)
      throw fail('K1017', `unknown param${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map((k) => `'${k}'`).join(', ')}; this model's params are ${[...paramByName.keys()].slice(0, 5).map((k) => `'${k}'`).join(', ')}${paramByName.size > 5 ? ', …' : ''}`);
    for (const k of names) checkArray('param', paramByName.get(k)!, params[k], staticSize(paramByName.get(k)!), {});
    for (const k of names) {
      const n = paramByName.get(k)!;
      const w = params[k]!;
      const ph = paramHome.get(n.id)!;
      if (staticSize(n) === undefined) dynParams.set(n.id, w);
      if (ph.raw !== undefined) view(n).set(w as never, ph.raw / 4);
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
      if (ph.packedNN) {
        // b [K, N] as stored: panel p holds columns 16p…16p+15 of every row, row after row
        const { at, N, K } = ph.packedNN;
        const dst = f32();
        const base = at / 4;
        for (let p = 0; p < Math.ceil(N / 16); p++)
          for (let k = 0; k < K; k++)
            for (let j = 0; j < 16; j++) {
              const n0 = p * 16 + j;
              dst[base + (p * K + k) * 16 + j] = n0 < N ? w[k * N + n0]! : 0;
            }
      }
      bound.add(k);
      if (opts.debugValues) hostParams.set(n.id, w);
    }
  }

  function bindSymbols(args: RunArgs): Record<string, number> {
    const given = args.symbols ?? {};
    const out: Record<string, number> = { ...spec };
    for (const [s, v] of Object.entries(spec)) if (given[s] !== undefined && given[s] !== v) throw fail('K1017', `this program is compiled for ${s} = ${v}, given ${s} = ${given[s]}`);
    for (const s of M.symbols) {
      let v = given[s];
      if (v === undefined)
        for (const n of sources.input) {
          const sh = n.shape;
          const k = sh.findIndex((d) => typeof d !== 'number' && d.offset === 0 && Object.keys(d.terms).length === 1 && d.terms[s] === 1);
          if (k < 0 || !sh.every((d, i) => i === k || isStatic(d) || Object.keys(d.terms).every((t) => spec[t] !== undefined))) continue;
          const x = args.inputs?.[nameOf(n)];
          if (x === undefined) continue;
          const per = sh.reduce<number>((a, d, i) => (i === k ? a : a * evalDim(d, spec)), 1);
          v = Math.floor(x.length / per);
          break;
        }
      if (v === undefined) throw fail('K1017', `no value for dim symbol '${s}' (pass it in symbols)`);
      if (!Number.isInteger(v) || v < 0) throw fail('K1017', `dim symbol '${s}' must be a non-negative integer, given ${v}`);
      const max = M.bounds[s];
      if (max !== undefined && v > max) throw fail('K1017', `${s} = ${v} is past ${max}, the largest the memory plan allows`);
      out[s] = v;
    }
    return out;
  }

  function step(args: RunArgs, debug?: Map<number, HostArray>): Record<string, HostArray> {
    const missing = [...paramByName.keys()].filter((k) => !bound.has(k));
    if (missing.length) throw fail('K1017', `weights not bound: ${missing.slice(0, 5).map((k) => `'${k}'`).join(', ')}${missing.length > 5 ? ', …' : ''} (call setWeights first)`);
    const env = bindSymbols(args);
    const size = (n: WasmNode) => {
      let s = 1;
      for (const d of n.shape) {
        const v = evalDim(d, env);
        if (v < 0) {
          // a slice ends before it starts: a bounds error, as the interpreter reports it
          if (n.op === 'slice') throw fail('K1009', `%${n.id}${n.scope ? ` (${n.scope})` : ''} slice: its range along axis ${n.axis} ends before it starts (${shapeToString(n.shape)} for ${JSON.stringify(env)})`);
          throw fail('K1017', `%${n.id} ${n.op}: dim ${shapeToString(n.shape)} is negative for ${JSON.stringify(env)}`);
        }
        s *= v;
      }
      return s;
    };
    const inputs = sources.input.map((n) => checkArray('input', n, args.inputs?.[nameOf(n)], size(n), env));
    const states = sources.state.map((n) => checkArray('state', n, args.state?.[nameOf(n)], size(n), env));
    // place the run-time sized values
    const words = new Int32Array(M.slots.length);
    const grew = ropeTables.fit(env);
    let top = align(M.staticBytes) + ropeTables.bytes;
    const scratchElems = () => Math.max(0, ...M.scratch.map((d) => scratchSize(d, env)));
    M.slots.forEach((s, slot) => {
      if (s === 'rope') return;
      words[slot] = top;
      top = align(top + (s === 'scratch' ? scratchElems() : size(byId.get(s)!)) * 4 + 16);
    });
    for (const n of dynArena)
      if (n.home.kind === 'arena' && size(n) > n.home.cap)
        throw fail('K1017', `value %${n.id} needs ${size(n)} elements, the memory plan has room for ${n.home.cap}: the symbols are past their planned bounds (is pos + seq above maxSeqLen?)`);
    if (top > MAX_PAGES * PAGE) throw tooBig(top, M);
    if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / PAGE));
    ropeTables.place(align(M.staticBytes), words, memory.buffer as ArrayBuffer, grew);
    i32().set(words, 0);
    const addr = (id: number): number => {
      let h = byId.get(id)!.home;
      while (h.kind === 'alias') h = byId.get(h.of)!.home;
      if (h.kind === 'static') return h.at;
      if (h.kind === 'arena') return M.arenaAt + h.offset;
      return words[h.slot]! >>> 0; // an address past 2 GiB reads back negative from an Int32Array
    };
    sources.input.forEach((n, i) => view(n).set(inputs[i]! as never, addr(n.id) / 4));
    for (const [id, w] of dynParams) {
      const n = byId.get(id)!;
      view(n).set(checkArray('param', n, w, size(n), env) as never, addr(id) / 4);
    }
    sources.state.forEach((n, i) => {
      const arr = states[i]!;
      const r = resident.get(nameOf(n));
      if (n.home.kind === 'static' && r && r.arr === arr && r.ver === (VERSION.get(arr) ?? 0)) return;
      const zeroAlready = n.home.kind === 'static' && untouched.has(nameOf(n)) && (args.freshState?.includes(nameOf(n)) || allZero(arr));
      untouched.delete(nameOf(n));
      if (!zeroAlready) view(n).set(arr as never, addr(n.id) / 4);
      if (!VERSION.has(arr)) VERSION.set(arr, 0);
      resident.set(nameOf(n), { arr, ver: VERSION.get(arr)! });
    });
    if (debug) {
      sources.input.forEach((n, i) => debug.set(n.id, inputs[i]!.slice()));
      sources.state.forEach((n, i) => debug.set(n.id, states[i]!.slice()));
      for (const [id, w] of hostParams) debug.set(id, w);
      for (const n of M.nodes) if (n.op === 'const') debug.set(n.id, view(n).slice(addr(n.id) / 4, addr(n.id) / 4 + size(n)));
    }
    dbg = debug;
    try {
      run(...M.symbols.map((s) => env[s]!));
    } finally {
      dbg = undefined;
    }
    const out: Record<string, HostArray> = {};
    for (const o of M.outputs) {
      const u = inPlace.get(o.value);
      if (u && o.name.startsWith('state:')) {
        const st = byId.get(u.state)!;
        const arr = states[sources.state.indexOf(st)]!;
        writeBack(u, st.shape.map((d) => evalDim(d, env)), arr, addr(st.id), env, view(st));
        const v = (VERSION.get(arr) ?? 0) + 1;
        VERSION.set(arr, v);
        resident.set(nameOf(st), { arr, ver: v });
        out[o.name] = arr;
        continue;
      }
      const n = byId.get(o.value)!;
      const [at, len] = [addr(o.value) / 4, size(n)];
      const dst = args.into?.[o.name];
      if (dst === undefined) {
        out[o.name] = view(n).slice(at, at + len);
        continue;
      }
      const want = view(n).constructor as typeof Float32Array;
      if (!(dst instanceof want) || dst.length < len)
        throw fail('K1017', `into['${o.name}']: expected a ${want.name} of at least ${len} values for output '${o.name}', given ${(dst as object)?.constructor?.name ?? typeof dst}${ArrayBuffer.isView(dst) ? ` of ${dst.length}` : ''}`);
      dst.set(view(n).subarray(at, at + len) as never);
      out[o.name] = dst.length === len ? dst : dst.subarray(0, len);
    }
    return out;
  }

  // Another host's setWeights binds this one's weights too, unless some are copied in per run.
  const sharesWeights = opts.share !== undefined && !opts.debugValues && sources.param.every((n) => staticSize(n) !== undefined);
  return { memory, share: { memory, ropeTables, resident, untouched, bound }, sharesWeights, instance, setWeights, run: step };
}

/** Copy the rows an in-place update_slice wrote back into the caller's state array. */
function writeBack(u: WasmManifest['inPlace'][number], shape: number[], arr: HostArray, at: number, env: Record<string, number>, mem: HostArray): void {
  const ax = u.axis;
  const start = evalDim(u.start, env);
  const len = evalDim(u.len, env);
  const inner = shape.slice(ax + 1).reduce((a, d) => a * d, 1);
  const outer = shape.slice(0, ax).reduce((a, d) => a * d, 1);
  const base = at / 4;
  for (let r = 0; r < outer; r++) {
    const from = (r * shape[ax]! + start) * inner;
    arr.set(mem.subarray(base + from, base + from + len * inner) as never, from);
  }
}
