/**
 * Where a fuzz failure comes from, two ways:
 *  - the first pass after which the *interpreter's* result differs from the original graph's
 *    (the pipeline re-run one pass at a time, the graph interpreted after each): a broken pass;
 *  - the first node whose backend value differs from the interpreter's on the same program
 *    (`debugValues`: every node's value by id, the program's ids on both sides): a broken kernel.
 */
import type { Backend, CompileOptions, HostArray } from '../../backends/backend.js';
import type { Graph, Node } from '../../graph/graph.js';
import { type Bindings, interpret, interpretAll } from '../../graph/interpret.js';
import { type HostTensor, hostTensor } from '../../graph/tensor.js';
import { typeToString } from '../../graph/types.js';
import { evalDim } from '../../graph/dim.js';
import { runPipeline } from '../../passes/manager.js';
import type { Pass, PassOptions } from '../../passes/pass.js';
import { type Mismatch, firstMismatch } from './compare.js';

/** Passes keep the interpreter's result up to float64 rounding. */
const PASS_TOLERANCE = 1e-6;

export interface PassDiff {
  /** 1-based position of the pass in the pipeline. */
  readonly index: number;
  readonly pass: string;
  /** What differs: an output and its worst element, or the error the pass threw. */
  readonly what: string;
  /** The graph the pass produced (undefined when it threw). */
  readonly graph?: Graph;
}

export interface NodeDiff {
  readonly node: Node;
  readonly got: HostArray;
  readonly want: Float64Array;
  readonly mismatch: Mismatch;
}

/** `%12 = mul(%3, %4) f32[2, seq]  layers.0.attn  model.ts:3:7` */
export function describeNode(n: Node): string {
  const what = n.op === 'fused' ? `fused ${String(n.attrs['pattern'])}` : n.op === 'input' || n.op === 'param' || n.op === 'state' ? `${n.op} "${String(n.attrs['name'])}"` : n.op;
  const loc = n.loc ? `  ${n.loc.file}:${n.loc.line}:${n.loc.col}` : '';
  return `%${n.id} = ${what}(${n.inputs.map((i) => `%${i}`).join(', ')}) ${typeToString(n.type)}${n.scope ? `  ${n.scope}` : ''}${loc}`;
}

/**
 * Bindings for a graph the pipeline made from the original: the original's values, plus zeroed
 * state and pos = 0 where insert-kv-cache added them (the step graph then computes the full graph).
 */
export function bindingsAfter(g: Graph, b: Bindings): Bindings {
  const symbols = { pos: 0, ...b.symbols };
  const state: Record<string, HostTensor> = { ...b.state };
  for (const n of g.nodes)
    if (n.op === 'state' && !state[String(n.attrs['name'])]) state[String(n.attrs['name'])] = hostTensor(n.type.dtype, n.type.shape.map((d) => evalDim(d, symbols)));
  return { ...b, symbols, state };
}

/** Compare an output against the reference's output of the same name; a [1, V] result is the reference's last row. */
export function compareOutput(got: ArrayLike<number>, want: HostTensor, tol: number): Mismatch | undefined {
  const w = got.length < want.data.length && got.length > 0 && want.data.length % got.length === 0 ? want.data.subarray(want.data.length - got.length) : want.data;
  return firstMismatch(got, w, tol);
}

function fmt(m: Mismatch): string {
  return `element ${m.index}: ${m.got} vs ${m.want}`;
}

/** The first pass after which interpreting the graph gives another result than the original. */
export function firstPassThatDiffers(original: Graph, b: Bindings, passes: readonly Pass[], opts: PassOptions): PassDiff | undefined {
  const ref = interpret(original, b);
  let g = original;
  for (let k = 0; k < passes.length; k++) {
    const pass = passes[k]!;
    try {
      g = runPipeline(g, [pass], opts).graph;
    } catch (e) {
      return { index: k + 1, pass: pass.name, what: `it threw: ${(e as Error).message}` };
    }
    let out: Record<string, HostTensor>;
    try {
      out = interpret(g, bindingsAfter(g, b));
    } catch (e) {
      return { index: k + 1, pass: pass.name, what: `its graph no longer runs in the interpreter: ${(e as Error).message}`, graph: g };
    }
    for (const [name, want] of Object.entries(ref)) {
      const got = out[name];
      if (!got) return { index: k + 1, pass: pass.name, what: `output '${name}' is gone`, graph: g };
      const m = compareOutput(got.data, want, PASS_TOLERANCE);
      if (m) return { index: k + 1, pass: pass.name, what: `output '${name}' differs at ${fmt(m)}`, graph: g };
    }
  }
  return undefined;
}

/** The first node (in schedule order) whose backend value differs from the interpreter's. */
export async function firstNodeThatDiffers(
  program: Graph,
  backend: Backend,
  b: Bindings,
  run: { inputs: Record<string, HostArray>; params: Record<string, HostArray>; state: Record<string, HostArray>; symbols: Record<string, number> },
  tol: number,
  compile: CompileOptions = {},
): Promise<NodeDiff | undefined> {
  const exe = await backend.compile(program, { ...compile, debugValues: true });
  let values: Map<number, HostArray>;
  try {
    if (!exe.runDebug) return undefined;
    exe.setWeights(run.params);
    values = exe.runDebug({ inputs: run.inputs, symbols: run.symbols, state: run.state }).values;
  } finally {
    exe.dispose?.();
  }
  const ref = interpretAll(program, { ...b, symbols: { ...b.symbols, ...compile.specialize } });
  for (const n of program.nodes) {
    const got = values.get(n.id);
    const want = ref.get(n.id);
    if (!got || !want) continue;
    const m = firstMismatch(got, want.data, tol);
    if (m) return { node: n, got, want: want.data, mismatch: m };
  }
  return undefined;
}
