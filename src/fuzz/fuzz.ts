/**
 * `kiln fuzz`: random programs through the whole compiler, judged by the interpreter.
 *
 *   random graph (arbGraph) ──passes──▶ program ──backend──▶ outputs ─┐
 *            └──────────────── interpreter (float64) ─────────────────┴─▶ agree within tolerance?
 *
 * Two kinds of cases: random valid graphs (every op, symbolic dims, odd floats) through the
 * passes that apply to any graph, and random tiny LLaMA variants through the full pipeline and a
 * Session (prefill, then decode steps against the KV cache), each step's logits against the
 * interpreter's run of the full-sequence graph. fast-check drives both with one seed, so a run
 * repeats exactly; on a failure it shrinks to the smallest failing case, which is then located:
 * the first pass whose output the interpreter no longer agrees with, and the first node whose
 * backend value differs from the interpreter's on the same program.
 */
import fc from 'fast-check';
import type { Backend } from '../../backends/backend.js';
import type { Graph } from '../../graph/graph.js';
import { interpret } from '../../graph/interpret.js';
import { OPS, type OpKind } from '../../graph/ops.js';
import { hostTensor } from '../../graph/tensor.js';
import { runPipeline } from '../../passes/manager.js';
import type { Pass, PassOptions } from '../../passes/pass.js';
import { PIPELINE } from '../../passes/pipeline.js';
import { type LlamaConfig, llama } from '../dsl/llama.js';
import { mulberry32 } from '../runtime/rng.js';
import { Session } from '../runtime/session.js';
import { randomWeights, weightsToHost } from '../runtime/weights.js';
import { arbGraph } from './arbitrary.js';
import { firstMismatch } from './compare.js';
import { FUZZ_MAX_SEQ_LEN, drawValues, freshState, paramsOf, roundF32Consts, toBindings } from './inputs.js';
import { type NodeDiff, type PassDiff, compareOutput, firstNodeThatDiffers, firstPassThatDiffers } from './locate.js';
import { arbLlamaConfig } from './tiny-llama.js';

/** How far each backend's float32 results may stray from the float64 interpreter (relative, see compare.ts). */
// wasm sums matmuls in f32 in a different order than the interpreter (and fuses multiply-adds where
// relaxed SIMD exists); its per-node tolerance is 1e-3 in its own conformance suite.
export const TOLERANCE: Readonly<Record<string, number>> = { js: 1e-3, wasm: 1e-3, interpret: 1e-6 };
const DEFAULT_TOLERANCE = 1e-3;

export type CaseKind = 'graph' | 'llama';

export interface FuzzOptions {
  readonly backends: readonly Backend[];
  /** Random graphs to try (default 100). */
  readonly runs?: number;
  /** LLaMA variants to try (default runs / 10, at least 1). */
  readonly llamaRuns?: number;
  readonly seed?: number;
  /** Passes for random graphs (default: PIPELINE without insert-kv-cache, which needs a LLaMA). */
  readonly graphPasses?: readonly Pass[];
  /** Passes for LLaMA variants (default PIPELINE). */
  readonly llamaPasses?: readonly Pass[];
  /** Per backend name; default TOLERANCE. */
  readonly tolerance?: Readonly<Record<string, number>>;
  /** Most nodes of a random graph (default 12). */
  readonly maxNodes?: number;
  readonly onProgress?: (kind: CaseKind, done: number, total: number) => void;
}

export interface FuzzFailure {
  readonly kind: CaseKind;
  readonly backend: string;
  /** fast-check's seed and the path to the shrunk case: `kiln fuzz --seed S` replays the run. */
  readonly seed: number;
  readonly path: string;
  /** The smallest failing graph (for a LLaMA case, the full-sequence graph of its config). */
  readonly graph: Graph;
  readonly config?: LlamaConfig;
  /** The symbol values and the seed of the case's values. */
  readonly symbols: Readonly<Record<string, number>>;
  readonly valuesSeed: number;
  readonly problem: string;
  readonly firstPass?: PassDiff;
  readonly firstNode?: NodeDiff;
  /** The program the backend compiled (after the passes), where first-node ids point. */
  readonly program?: Graph;
}

export interface FuzzResult {
  readonly ok: boolean;
  readonly runs: Readonly<Record<CaseKind, number>>;
  readonly skipped: number;
  readonly ms: number;
  readonly failure?: FuzzFailure;
}

export const GRAPH_PASSES: readonly Pass[] = PIPELINE.filter((p) => p.name !== 'insert-kv-cache');
const GRAPH_PASS_OPTS: PassOptions = { maxSeqLen: FUZZ_MAX_SEQ_LEN };
const LLAMA_PASS_OPTS: PassOptions = { lastLogitsOnly: true };

/** A case whose values the original graph itself rejects (an index out of range): not a finding. */
const SKIP = Symbol('skip');
type Outcome = typeof SKIP | undefined | { backend: string; problem: string };

function message(e: unknown): string {
  return e instanceof Error ? `${e.name === 'Error' ? '' : `${e.name}: `}${e.message}` : String(e);
}

// ---------------------------------------------------------------------------------------------
// random graphs

async function checkGraph(drawn: Graph, valuesSeed: number, o: Resolved): Promise<Outcome> {
  const g = roundF32Consts(drawn);
  const v = drawValues(g, valuesSeed);
  const b = toBindings(g, v);
  let ref;
  try {
    ref = interpret(g, b);
  } catch {
    return SKIP;
  }
  let program: Graph;
  try {
    program = runPipeline(g, o.graphPasses, GRAPH_PASS_OPTS).graph;
  } catch (e) {
    return { backend: '(passes)', problem: `the pipeline failed: ${message(e)}` };
  }
  for (const backend of o.backends) {
    let exe: Awaited<ReturnType<typeof backend.compile>> | undefined;
    try {
      exe = await backend.compile(program);
      exe.setWeights(paramsOf(program, v.params));
      const out = exe.run({ inputs: v.inputs, symbols: v.symbols, state: freshState(v) });
      for (const [name, want] of Object.entries(ref)) {
        const got = out[name];
        if (!got) return { backend: backend.name, problem: `output '${name}' is missing` };
        const m = compareOutput(got, want, o.tol(backend));
        if (m) return { backend: backend.name, problem: `output '${name}' differs at element ${m.index}: ${backend.name} ${m.got}, interpreter ${m.want}` };
      }
    } catch (e) {
      return { backend: backend.name, problem: `it threw: ${message(e)}` };
    } finally {
      // a wasm program holds worker threads and its memory until disposed: shrinking compiles hundreds
      exe?.dispose?.();
    }
  }
  return undefined;
}

async function locateGraph(drawn: Graph, valuesSeed: number, backendName: string, o: Resolved): Promise<Partial<FuzzFailure>> {
  const g = roundF32Consts(drawn);
  const v = drawValues(g, valuesSeed);
  const b = toBindings(g, v);
  const firstPass = firstPassThatDiffers(g, b, o.graphPasses, GRAPH_PASS_OPTS);
  const backend = o.backends.find((x) => x.name === backendName);
  let program: Graph | undefined;
  let firstNode: NodeDiff | undefined;
  try {
    program = runPipeline(g, o.graphPasses, GRAPH_PASS_OPTS).graph;
    if (backend) firstNode = await firstNodeThatDiffers(program, backend, toBindings(program, v), { ...v, params: paramsOf(program, v.params), state: freshState(v) }, o.tol(backend));
  } catch {
    // the pipeline or the backend throws: firstPass or the problem says so
  }
  return { symbols: v.symbols, ...(firstPass ? { firstPass } : {}), ...(firstNode ? { firstNode } : {}), ...(program ? { program } : {}) };
}

// ---------------------------------------------------------------------------------------------
// LLaMA variants

interface LlamaCase {
  readonly g: Graph;
  readonly tokens: number[];
  readonly prompt: number;
}

function llamaCase(config: LlamaConfig, seed: number): LlamaCase {
  const g = llama(config).build();
  const u = mulberry32(seed);
  const n = config.maxSeqLen;
  const tokens = Array.from({ length: n }, () => Math.floor(u() * config.vocabSize));
  return { g, tokens, prompt: 1 + Math.floor(u() * (n - 1)) };
}

async function checkLlama(config: LlamaConfig, seed: number, o: Resolved): Promise<Outcome> {
  const { g, tokens, prompt } = llamaCase(config, seed);
  const weights = randomWeights(g, seed);
  const ref = interpret(g, { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params: weightsToHost(g, weights) })['logits']!;
  const V = config.vocabSize;
  for (const backend of o.backends) {
    try {
      const s = await Session.create(g, { backend, weights, passes: o.llamaPasses });
      for (let at = prompt; at <= tokens.length; at++) {
        const logits = at === prompt ? s.prefill(tokens.slice(0, prompt)) : s.decode(tokens[at - 1]!);
        const m = firstMismatch(logits, ref.data.subarray((at - 1) * V, at * V), o.tol(backend));
        const step = at === prompt ? `the prefill of ${prompt} tokens` : `the decode step at position ${at - 1}`;
        if (m) return { backend: backend.name, problem: `the logits of ${step} differ at token ${m.index}: ${backend.name} ${m.got}, interpreter ${m.want}` };
      }
    } catch (e) {
      return { backend: backend.name, problem: `it threw: ${message(e)}` };
    }
  }
  return undefined;
}

async function locateLlama(config: LlamaConfig, seed: number, backendName: string, o: Resolved): Promise<Partial<FuzzFailure>> {
  const { g, tokens } = llamaCase(config, seed);
  const weights = randomWeights(g, seed);
  const params = weightsToHost(g, weights);
  const b = { inputs: { tokens: hostTensor('i32', [tokens.length], tokens) }, params, symbols: { seq: tokens.length } };
  const firstPass = firstPassThatDiffers(g, b, o.llamaPasses, LLAMA_PASS_OPTS);
  const backend = o.backends.find((x) => x.name === backendName);
  let program: Graph | undefined;
  let firstNode: NodeDiff | undefined;
  try {
    program = runPipeline(g, o.llamaPasses, LLAMA_PASS_OPTS).graph;
    if (backend) {
      // The prefill program on the whole sequence from position 0, then the decode program on one token.
      for (const n of [tokens.length, 1]) {
        const toks = tokens.slice(0, n);
        const symbols = { seq: n, pos: 0 };
        const state: Record<string, Float32Array> = {};
        for (const x of program.nodes) if (x.op === 'state') state[String(x.attrs['name'])] = new Float32Array(x.type.shape.reduce<number>((a, d) => a * (d as number), 1));
        const pb = { inputs: { tokens: hostTensor('i32', [n], toks) }, params, symbols, state: Object.fromEntries(Object.entries(state).map(([k, a]) => [k, hostTensor('f32', program!.nodes.find((x) => x.attrs['name'] === k && x.op === 'state')!.type.shape as number[], a)])) };
        const run = { inputs: { tokens: Int32Array.from(toks) }, params: weights, state, symbols };
        firstNode = await firstNodeThatDiffers(program, backend, pb, run, o.tol(backend), n === 1 ? { specialize: { seq: 1 } } : {});
        if (firstNode) break;
      }
    }
  } catch {
    // reported through the problem or firstPass
  }
  return { graph: g, config, symbols: { seq: tokens.length, pos: 0 }, ...(firstPass ? { firstPass } : {}), ...(firstNode ? { firstNode } : {}), ...(program ? { program } : {}) };
}

// ---------------------------------------------------------------------------------------------
// the driver

interface Resolved {
  readonly backends: readonly Backend[];
  readonly graphPasses: readonly Pass[];
  readonly llamaPasses: readonly Pass[];
  tol(b: Backend): number;
}

export async function fuzz(opts: FuzzOptions): Promise<FuzzResult> {
  const t0 = performance.now();
  const seed = opts.seed ?? 0;
  const runs = opts.runs ?? 100;
  const llamaRuns = opts.llamaRuns ?? Math.max(1, Math.ceil(runs / 10));
  const tolerances = { ...TOLERANCE, ...opts.tolerance };
  const o: Resolved = {
    backends: opts.backends,
    graphPasses: opts.graphPasses ?? GRAPH_PASSES,
    llamaPasses: opts.llamaPasses ?? PIPELINE,
    tol: (b) => tolerances[b.name] ?? DEFAULT_TOLERANCE,
  };
  const progress = (kind: CaseKind, total: number) => {
    let done = 0;
    // Shrinking runs the property again: progress counts the first `total` runs only.
    return () => {
      if (done < total) opts.onProgress?.(kind, ++done, total);
    };
  };

  // Random graphs. The values' seed is part of the case, so shrinking keeps the values with the graph.
  // No hand-made fused ops: their patterns are arbitrary names no backend has; the fusion passes make real ones.
  const ops = (Object.keys(OPS) as OpKind[]).filter((k) => k !== 'fused');
  const graphArb = fc.tuple(arbGraph({ ops, ...(opts.maxNodes !== undefined ? { maxNodes: opts.maxNodes } : {}) }), fc.nat());
  const tickG = progress('graph', runs);
  let skipped = 0;
  const graphRun = await fc.check(
    fc.asyncProperty(graphArb, async ([g, vs]) => {
      tickG();
      const r = await checkGraph(g, vs, o);
      if (r === SKIP) {
        skipped++;
        fc.pre(false);
      }
      if (r) throw new Error(`${r.backend}: ${r.problem}`);
    }),
    { seed, numRuns: runs, endOnFailure: false },
  );
  if (graphRun.failed && graphRun.counterexample) {
    const [g, vs] = graphRun.counterexample[0];
    const r = await checkGraph(g, vs, o);
    const bad = r && r !== SKIP ? r : { backend: o.backends[0]?.name ?? '?', problem: message(graphRun.errorInstance) };
    const where = await locateGraph(g, vs, bad.backend, o);
    return {
      ok: false,
      runs: { graph: graphRun.numRuns, llama: 0 },
      skipped,
      ms: performance.now() - t0,
      failure: { kind: 'graph', backend: bad.backend, seed, path: graphRun.counterexamplePath ?? '', graph: roundF32Consts(g), symbols: {}, valuesSeed: vs, problem: bad.problem, ...where },
    };
  }

  const tickL = progress('llama', llamaRuns);
  const llamaRun = await fc.check(
    fc.asyncProperty(fc.tuple(arbLlamaConfig, fc.nat()), async ([c, s]) => {
      tickL();
      const r = await checkLlama(c, s, o);
      if (r && r !== SKIP) throw new Error(`${r.backend}: ${r.problem}`);
    }),
    { seed, numRuns: llamaRuns, endOnFailure: false },
  );
  if (llamaRun.failed && llamaRun.counterexample) {
    const [c, s] = llamaRun.counterexample[0];
    const r = await checkLlama(c, s, o);
    const bad = r && r !== SKIP ? r : { backend: o.backends[0]?.name ?? '?', problem: message(llamaRun.errorInstance) };
    const where = await locateLlama(c, s, bad.backend, o);
    return {
      ok: false,
      runs: { graph: graphRun.numRuns, llama: llamaRun.numRuns },
      skipped,
      ms: performance.now() - t0,
      failure: { kind: 'llama', backend: bad.backend, seed, path: llamaRun.counterexamplePath ?? '', graph: where.graph!, symbols: {}, valuesSeed: s, problem: bad.problem, ...where },
    };
  }
  return { ok: true, runs: { graph: graphRun.numRuns, llama: llamaRun.numRuns }, skipped, ms: performance.now() - t0 };
}
