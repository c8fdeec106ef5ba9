/**
 * The js backend: a Program becomes one readable ES module (see emit.ts), and the Executable is
 * that very source evaluated in-process — what `kiln compile --out` writes is what runs. The
 * module's errors are built as KilnErrors here (in a standalone copy they are plain Errors with
 * the same `code`).
 */
import { KilnError, type ErrorCode } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import type { Backend, CompileOptions, DebugRun, Executable, HostArray, RunArgs } from '../backend.js';
import { KernelTimer } from '../profile.js';
import { BACKEND, EXPORT_LINE, emitModule } from './emit.js';
import { FUSED_KERNELS } from './kernels/index.js';

/** What the generated module's createModel() returns. */
interface GeneratedModel {
  setWeights(params: Readonly<Record<string, HostArray>>): void;
  run(args: RunArgs, dbg?: Map<number, HostArray>): Record<string, HostArray>;
}
type Factory = (options: { makeError: (code: string, message: string) => Error; tick?: (id: number) => void }) => GeneratedModel;

/** Evaluate the module's source as it stands, minus its export line. */
export function loadModule(source: string): Factory {
  const at = source.lastIndexOf(EXPORT_LINE);
  if (at < 0) throw new Error('js backend: generated source has no export line');
  const body = `'use strict';\n${source.slice(0, at)}\nreturn createModel;`;
  return new Function(body)() as Factory;
}

export const jsBackend: Backend = {
  name: BACKEND,
  caps: { fusedPatterns: Object.keys(FUSED_KERNELS), simd: false, threads: 1 },
  async compile(program: Graph, opts: CompileOptions = {}): Promise<Executable> {
    const { source, nodes } = emitModule(program, opts);
    const timer = opts.profile ? new KernelTimer(nodes) : undefined;
    const model = loadModule(source)({ makeError: (code, message) => new KilnError(code as ErrorCode, message), ...(timer && { tick: timer.tick }) });
    const exe: Executable = {
      backend: BACKEND,
      source,
      setWeights: (params) => model.setWeights(params),
      run: (args) => model.run(args),
      ...(timer && { profile: () => timer.times() }),
    };
    if (!opts.debugValues) return exe;
    return {
      ...exe,
      runDebug(args: RunArgs): DebugRun {
        const values = new Map<number, HostArray>();
        const outputs = model.run(args, values);
        return { outputs, values };
      },
    };
  },
};
