/**
 * The wasm backend: a Program becomes one WebAssembly module (emit.ts) over one linear memory
 * (layout.ts), run by the platform-free host (host.ts) from the module and its manifest
 * (manifest.ts). What only Node has stays here: the relaxed-SIMD flag of V8, worker threads over
 * a shared memory (threads > 1), and kernel profiles.
 */
import * as os from 'node:os';
import * as v8 from 'node:v8';
import { InternalError, KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import type { Backend, CompileOptions, DebugRun, Executable, HostArray, RunArgs } from '../backend.js';
import { type Emitted, emitModule, jobArea } from './emit.js';
import { loadBinaryen } from './fn.js';
import { createWasmHost, relaxedSimdSupported, sameStaticLayout, type SharedMemory, type WasmManifest } from './host.js';
import { BACKEND, FUSED } from './layout.js';
import { wasmManifest } from './manifest.js';
import { KernelTimer } from '../profile.js';
import { WorkerPool } from './threads.js';
import { WA } from './wasm-api.js';

export interface WasmBackendOptions {
  /** Threads for the matmul/matvec kernels (default: the core count). */
  readonly threads?: number;
  /** Relaxed-SIMD fused multiply-add: 'auto' (default) uses it when the engine has it. */
  readonly relaxedSimd?: 'auto' | boolean;
}

let relaxedKnown: boolean | undefined;
/** Whether the engine has relaxed SIMD, after asking V8 to enable it (Node 20 has it behind a flag). */
export function hasRelaxedSimd(): boolean {
  if (relaxedKnown !== undefined) return relaxedKnown;
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    // not V8: the probe decides
  }
  return (relaxedKnown = relaxedSimdSupported());
}

export function createWasmBackend(opts: WasmBackendOptions = {}): Backend {
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 1 && opts.threads <= 64))
    throw new KilnError('K1016', `wasm backend: threads must be a whole number from 1 to 64, got ${opts.threads}`);
  const threads = Math.min(64, opts.threads ?? os.availableParallelism());
  return {
    name: BACKEND,
    caps: { fusedPatterns: [...FUSED], simd: true, threads },
    async compile(program: Graph, copts: CompileOptions = {}): Promise<WasmExecutable> {
      const b = await loadBinaryen();
      const relaxed = opts.relaxedSimd === 'auto' || opts.relaxedSimd === undefined ? hasRelaxedSimd() : opts.relaxedSimd && hasRelaxedSimd();
      // A program that will share a threaded program's memory posts to the other job area.
      const other = copts.shareWith;
      const area = other && isWasmExecutable(other) ? 1 - (other.manifest.jobArea ?? 0) : 0;
      const e = emitModule(b, program, { ...copts, threads, relaxed, jobArea: area });
      return instantiate(e, wasmManifest(program, e, { threads, jobArea: area, ...(copts.specialize ? { specialize: copts.specialize } : {}) }), copts, relaxed);
    },
  };
}

/** The default: threads = core count, relaxed SIMD when available. */
export const wasmBackend: Backend = createWasmBackend();

/** A wasm executable also carries its manifest: with `binary`, all that loads it elsewhere (host.ts). */
export interface WasmExecutable extends Executable {
  readonly binary: Uint8Array;
  readonly manifest: WasmManifest;
  /** Its memory and bookkeeping, for an executable compiled with `shareWith` this one. */
  readonly share: SharedMemory;
}

export const isWasmExecutable = (x: Executable): x is WasmExecutable => x.backend === BACKEND && 'manifest' in x;

/** The shared host, plus what only Node has: worker threads, profiling. */
async function instantiate(e: Emitted, manifest: WasmManifest, copts: CompileOptions, relaxed: boolean): Promise<WasmExecutable> {
  const timer = new KernelTimer(e.nodes);
  const module = new WA.Module(e.binary);
  // One memory (so one copy of the weights) with the executable given as shareWith, when both have
  // the same layout; threaded, each keeps its own workers, watching its own job area.
  const other = copts.shareWith;
  const share = other && isWasmExecutable(other) && sameStaticLayout(other.manifest, manifest) ? { share: other.share } : {};
  const host = await createWasmHost(manifest, module, { imports: { prof: timer.tick }, debugValues: copts.debugValues === true, ...share });
  const pool = manifest.threads > 1 ? new WorkerPool(module, host.memory, manifest.threads - 1, jobArea(manifest.jobArea ?? 0)) : undefined;
  const exe: WasmExecutable = {
    backend: BACKEND,
    device: `${relaxed ? 'relaxed SIMD' : 'SIMD128'}, ${manifest.threads} thread${manifest.threads > 1 ? 's' : ''}`,
    source: e.text,
    binary: e.binary,
    manifest,
    share: host.share,
    sharesWeights: host.sharesWeights,
    setWeights: host.setWeights,
    run: (args) => {
      if (pool?.failure) throw new InternalError(`wasm backend: a worker thread failed: ${pool.failure.message}`);
      return host.run(args);
    },
    dispose: () => pool?.dispose(),
    ...(copts.profile && { profile: () => timer.times() }),
  };
  if (!copts.debugValues) return exe;
  return {
    ...exe,
    runDebug(args: RunArgs): DebugRun {
      const values = new Map<number, HostArray>();
      const outputs = host.run(args, values);
      return { outputs, values };
    },
  };
}
