import type { Graph } from '../graph/graph.js';

/**
 * The interface every backend implements. A backend compiles a Program (a graph after the
 * pipeline, whose node order is the schedule and whose meta.memoryPlan is the arena layout) into
 * an Executable. A kernel that a backend lacks is a compile error naming the op and the backend —
 * never a silent fallback to another backend.
 */
export interface BackendCaps {
  /** Which fused patterns it has kernels for (passes may read this; never backend names). */
  readonly fusedPatterns: readonly string[];
  readonly simd: boolean;
  readonly threads: number;
  readonly maxTextureSize?: number;
}

export type HostArray = Float32Array | Int32Array;

export interface RunArgs {
  /** Graph inputs by name (`tokens` as Int32Array). */
  readonly inputs: Readonly<Record<string, HostArray>>;
  /** Values of the dim symbols (`seq`, `pos`). */
  readonly symbols: Readonly<Record<string, number>>;
  /**
   * State buffers by name (KV caches). A backend may update them in place: an `update_slice`
   * whose base is a `state` node and whose value is the output `state:<name>` writes its rows
   * straight into `state[name]` (when nothing reads the old state after it), and that output is
   * then the very same buffer. Either way, keep the returned `state:<name>` as the next state.
   */
  readonly state?: Readonly<Record<string, HostArray>>;
  /**
   * States the caller passes zero-filled and unwritten since it made them (a new Session's KV
   * caches): a backend may take them as zeros without reading them. Reading the fresh pages of a
   * stories110M cache (75 MB) took ~240 ms here; most of them a short run never needs.
   */
  readonly freshState?: readonly string[];
  /**
   * Arrays for outputs, by name, owned by the caller and reused across runs (of the output's
   * dtype, at least its size): a backend may write an output into its array rather than allocate
   * a new one, and then returns it (or its first elements). A new 2 MB array per run cost
   * 0.3–2.7 ms here, in page faults. The wasm backend takes them; the others may not.
   */
  readonly into?: Readonly<Record<string, HostArray>>;
}

/** A run with every node's value: what `kiln fuzz` reads to find the first node that differs. */
export interface DebugRun {
  readonly outputs: Record<string, HostArray>;
  /** Each node's value by id (copies, taken right after the node ran; fused bodies' insides are not listed). */
  readonly values: Map<number, HostArray>;
}

export interface Executable {
  readonly backend: string;
  /**
   * Bind weights (row-major, by param name; Float32Array for f32 params, Int32Array for i32);
   * checked against the graph's param types: an unknown name, a wrong array kind or a wrong
   * length is a K1017 KilnError naming the param and its expected shape.
   */
  setWeights(params: Readonly<Record<string, HostArray>>): void;
  /**
   * Compiled with `shareWith` and holding that executable's very weights (wasm: one memory):
   * its setWeights binds this one's too, so a second copy can be skipped (calling it is allowed).
   */
  readonly sharesWeights?: boolean;
  /**
   * Run one step; returns the graph outputs by name (row-major), fresh arrays owned by the caller
   * — except `state:<name>` outputs written in place, which are the caller's state buffers.
   */
  run(args: RunArgs): Record<string, HostArray>;
  /** Only when compiled with `debugValues`: run, and also return every node's value by id. */
  runDebug?(args: RunArgs): DebugRun;
  /** Only when compiled with `profile`: the time each node's kernel took, summed over the runs so far. */
  profile?(): readonly NodeTime[];
  /** The generated source, for `kiln compile --out` (a readable module that runs on its own). */
  readonly source?: string;
  /**
   * The device it runs on, where a backend has a choice (gpu: 'headlessgl' or 'webgpu' in Node).
   * gpu: weights and the KV state live on the device; inputs go up each run, and only the logits
   * and the state rows a run wrote (into the caller's state buffers) come back.
   */
  readonly device?: string;
  /** Why the device in use was chosen over another (gpu `auto`: which device it skipped, and why); the CLI prints it. */
  readonly deviceNote?: string;
  /** The compiled binary, where the backend makes one (wasm: the module whose text is `source`). */
  readonly binary?: Uint8Array;
  /**
   * Release what the executable holds beyond memory (wasm: its worker threads). Optional; after
   * it, the executable must not be run. Idle workers never keep the process alive either way.
   */
  dispose?(): void;
}

export interface CompileOptions {
  /** Dim symbols fixed at compile time (e.g. `{ seq: 1 }` for the one-token decode program). */
  readonly specialize?: Readonly<Record<string, number>>;
  /** Keep a copy of every node's value during a run (Executable.runDebug); slower, for debugging. */
  readonly debugValues?: boolean;
  /** Time every kernel (Executable.profile); costs a host call per kernel. */
  readonly profile?: boolean;
  /**
   * An executable of the same graph (another specialisation) that this one will only ever run in
   * turn with: a backend may let the two share their weights (wasm on one thread: one memory).
   * Where it cannot, the option changes nothing.
   */
  readonly shareWith?: Executable;
}

/** One node's share of the run time (see backends/profile.ts for the summary by op). */
export interface NodeTime {
  readonly id: number;
  /** The op, or `fused:<pattern>`. */
  readonly op: string;
  readonly scope: string;
  readonly ms: number;
  readonly runs: number;
}

export interface Backend {
  readonly name: string;
  readonly caps: BackendCaps;
  /** Async because some emitters load asynchronously (binaryen, GPU devices). */
  compile(program: Graph, opts?: CompileOptions): Promise<Executable>;
}
