/**
 * The reference interpreter behind the Backend interface, so that a Session (and `kiln logits
 * --backend interpret`) can run on it exactly as on a compiled backend. Float64 inside; results
 * are handed back as float32 arrays like any backend's. Slow: for tiny models and for checking.
 */
import type { Backend, DebugRun, Executable, HostArray, RunArgs } from '../../backends/backend.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { type Bindings, interpretAll } from '../../graph/interpret.js';
import { type HostTensor, hostTensor } from '../../graph/tensor.js';
import { evalDim } from '../../graph/dim.js';

export const INTERPRET = 'interpret';

function toArray(t: HostTensor): HostArray {
  return t.dtype === 'i32' ? Int32Array.from(t.data) : Float32Array.from(t.data);
}

/** Bind a graph's sources from flat arrays: shapes come from the types with the symbols filled in. */
export function bindingsFor(g: Graph, args: RunArgs, params: Readonly<Record<string, HostArray>>): Bindings {
  const symbols: Record<string, number> = { ...args.symbols };
  const b = { inputs: {} as Record<string, HostTensor>, params: {} as Record<string, HostTensor>, state: {} as Record<string, HostTensor>, symbols };
  const from = { input: [args.inputs, b.inputs], param: [params, b.params], state: [args.state ?? {}, b.state] } as const;
  // A symbol not given is read off a 1-D input that is exactly that symbol (tokens: [seq]).
  for (const n of g.nodes) {
    const d = n.type.shape[0];
    if (n.op !== 'input' || n.type.shape.length !== 1 || typeof d === 'number' || d === undefined || d.offset !== 0) continue;
    const syms = Object.keys(d.terms);
    const data = args.inputs[String(n.attrs['name'])];
    if (syms.length === 1 && d.terms[syms[0]!] === 1 && data) symbols[syms[0]!] ??= data.length;
  }
  for (const n of g.nodes) {
    if (n.op !== 'input' && n.op !== 'param' && n.op !== 'state') continue;
    const name = String(n.attrs['name']);
    const [src, dst] = from[n.op];
    const data = src[name];
    if (!data) continue; // the interpreter names what is missing
    let shape: number[];
    try {
      shape = n.type.shape.map((d) => evalDim(d, symbols));
    } catch (e) {
      throw new KilnError('K1017', `${n.op} '${name}': ${(e as Error).message}`);
    }
    dst[name] = hostTensor(n.type.dtype, shape, data);
  }
  return b;
}

export const interpretBackend: Backend = {
  name: INTERPRET,
  caps: { fusedPatterns: ['rope_qk', 'swiglu', 'elementwise'], simd: false, threads: 1 },
  async compile(program, opts = {}) {
    let params: Readonly<Record<string, HostArray>> = {};
    const runDebug = (args: RunArgs): DebugRun => {
      const b = bindingsFor(program, { ...args, symbols: { ...args.symbols, ...opts.specialize } }, params);
      const vals = interpretAll(program, b);
      const values = new Map<number, HostArray>([...vals].map(([id, t]) => [id, toArray(t)]));
      const outputs = Object.fromEntries(program.outputs.map((o) => [o.name, values.get(o.value)!.slice()]));
      return { outputs, values };
    };
    const exe: Executable = {
      backend: INTERPRET,
      setWeights: (p) => {
        params = p;
      },
      run: (args) => runDebug(args).outputs,
      ...(opts.debugValues ? { runDebug } : {}),
    };
    return exe;
  },
};
