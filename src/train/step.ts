/**
 * The compiled training step. The gradient is a graph: `trainingGraph` (loss-graph.ts) appends
 * the mean next-token cross-entropy to the model and the autodiff pass appends `grad:<param>`
 * outputs; the training pipeline below fuses and plans it like any program, and a backend
 * compiles it for one window of `seq` tokens. A step runs that program on every row of every
 * micro-batch and sums the gradients, then clips and updates the weights (adamw.ts) and binds
 * them again. `loss` alone (no backward) is a second, smaller program for validation.
 *
 * What is kept for the backward pass is whatever the backward graph reads: the memory plan sees
 * it like any other value, so `plan.arenaBytes` is the step's peak of intermediates.
 */
import type { Backend, Executable, HostArray } from '../../backends/backend.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { constantFold } from '../../passes/constant-fold.js';
import { cse } from '../../passes/cse.js';
import { dce } from '../../passes/dce.js';
import { fuseCausalSoftmax } from '../../passes/fuse-causal-softmax.js';
import { fuseElementwise } from '../../passes/fuse-elementwise.js';
import { fuseSwiglu } from '../../passes/fuse-swiglu.js';
import { tokensSymbol } from '../../passes/kv-util.js';
import { type PassReport, runPipeline } from '../../passes/manager.js';
import type { Pass } from '../../passes/pass.js';
import { type MemoryPlan, planMemory } from '../../passes/plan-memory.js';
import { DROPOUT_KEY, lossGraph, trainingGraph } from './loss-graph.js';
import type { UpdateKernels } from './update-kernels.js';

/**
 * The passes a training program runs: the inference pipeline without the KV cache (a training
 * window is one whole sequence) and without fuse-rope-qk (the backward pass reads rope(q) and
 * rope(k) themselves, so there is nothing for it to take).
 */
export const TRAIN_PIPELINE: readonly Pass[] = [constantFold, cse, dce, fuseSwiglu, fuseCausalSoftmax, fuseElementwise, dce, planMemory];

export interface CompiledProgram {
  readonly exe: Executable;
  readonly graph: Graph;
  readonly reports: readonly PassReport[];
  readonly plan: MemoryPlan;
}

/** The dim symbol of the tokens' length; a model whose tokens have a fixed length cannot train on windows. */
function seqSymbol(g: Graph): string {
  const sym = tokensSymbol(g);
  if (sym === undefined) throw new KilnError('K1018', `training needs the model's tokens input to be [seq] with a symbolic length; ${g.name}'s is not`);
  return sym;
}

async function compileFor(g: Graph, backend: Backend, seq: number): Promise<CompiledProgram> {
  const sym = seqSymbol(g);
  const { graph, reports } = runPipeline(g, TRAIN_PIPELINE, { maxSeqLen: seq, maxBatch: seq });
  const exe = await backend.compile(graph, { specialize: { [sym]: seq } });
  return { exe, graph, reports, plan: graph.meta['memoryPlan'] as MemoryPlan };
}

/** The params a training run updates: every f32 param of the model, in graph order. */
export function trainableParams(model: Graph): { name: string; shape: number[] }[] {
  const seen = new Set<string>();
  const out: { name: string; shape: number[] }[] = [];
  for (const n of model.nodes) {
    if (n.op !== 'param' || n.type.dtype !== 'f32') continue;
    const name = String(n.attrs['name']);
    if (seen.has(name)) continue;
    seen.add(name);
    out.push({ name, shape: n.type.shape.map(Number) });
  }
  return out;
}

export interface Row {
  readonly inputs: Int32Array;
  readonly targets: Int32Array;
}

/** The grad program and the loss program of one model on one backend, for windows of `seq`. */
export class TrainingPrograms {
  private constructor(
    readonly grad: CompiledProgram,
    readonly loss: CompiledProgram,
    readonly params: readonly { name: string; shape: number[] }[],
    readonly seq: number,
    private readonly sym: string,
    /** The grad program drops out residual branches (and so takes a dropout key per row). */
    readonly dropout: number,
  ) {}

  /** `dropout`: on every residual branch of the grad program; validation runs without. */
  static async create(model: Graph, backend: Backend, seq: number, opts: { dropout?: number } = {}): Promise<TrainingPrograms> {
    const max = (model.meta['llama'] as { maxSeqLen?: number } | undefined)?.maxSeqLen;
    if (max !== undefined && seq > max) throw new KilnError('K1016', `--seq ${seq} is past the model's context (maxSeqLen ${max})`);
    const dropout = opts.dropout ?? 0;
    const grad = await compileFor(trainingGraph(model, { dropout }), backend, seq);
    const loss = await compileFor(lossGraph(model), backend, seq);
    return new TrainingPrograms(grad, loss, trainableParams(model), seq, seqSymbol(model), dropout);
  }

  /** The loss program binds the weights only when it next runs: it runs at evaluations, the grad program every step. */
  private lossWeights: Readonly<Record<string, Float32Array>> | undefined;

  setWeights(w: Readonly<Record<string, Float32Array>>): void {
    this.grad.exe.setWeights(w);
    this.lossWeights = w;
  }

  private args(r: Row, key?: Int32Array) {
    if (r.inputs.length !== this.seq || r.targets.length !== this.seq) throw new KilnError('K1017', `a training row has ${r.inputs.length} inputs and ${r.targets.length} targets; this program takes ${this.seq}`);
    return { inputs: { tokens: r.inputs, targets: r.targets, ...(key ? { [DROPOUT_KEY]: key } : {}) }, symbols: { [this.sym]: this.seq } };
  }

  /**
   * The mean loss of one row, and its gradients added into `into` (by param name; `first`: written
   * over what `into` holds). With dropout, `key` is [seed, n] for the run's n-th row, so every row
   * draws its own masks and a resumed run draws the same ones.
   */
  accumulate(r: Row, into: Readonly<Record<string, Float32Array>>, key?: readonly [number, number], first = false): number {
    if (this.dropout > 0 && !key) throw new KilnError('K1017', 'a training program with dropout needs a dropout key per row');
    // A first row's gradients land in `into` itself; the others in arrays reused from row to row (a
    // stories15M row's are 61 MB, which a new allocation per row pays for again in page faults),
    // then added. A backend that does not take `into` (js) returns its own arrays: copied over.
    this.gradInto ??= Object.fromEntries(this.params.map((p) => [`grad:${p.name}`, this.sum.alloc(into[p.name]!.length)]));
    const given = first ? Object.fromEntries(this.params.map((p) => [`grad:${p.name}`, into[p.name]!])) : this.gradInto;
    const out = this.grad.exe.run({ ...this.args(r, this.dropout > 0 ? Int32Array.from(key!) : undefined), into: given });
    for (const { name } of this.params) {
      let g = out[`grad:${name}`] as Float32Array | undefined;
      const acc = into[name]!;
      if (!g) throw new KilnError('K1018', `the training program has no gradient for '${name}'`);
      const mine = given[`grad:${name}`]!;
      if (g !== mine) {
        mine.set(g.subarray(0, acc.length));
        g = mine;
      }
      if (!first) this.sum.add(acc, g);
    }
    return (out['loss'] as HostArray)[0]!;
  }

  /** How rows' gradients are summed: plain loops, or the update kernels (whose memory `into` must then be in). */
  private sum: { alloc(n: number): Float32Array; add(dst: Float32Array, src: Float32Array): void } = {
    alloc: (n) => new Float32Array(n),
    add: (dst, src) => {
      for (let i = 0; i < dst.length; i++) dst[i]! += src[i]!;
    },
  };

  /** Sum rows with `kernels` from now on (train() does: its gradient sums live in their memory). */
  sumWith(kernels: UpdateKernels): void {
    this.sum = kernels;
    this.gradInto = undefined;
  }

  /** The mean loss of one row, forward only. */
  rowLoss(r: Row): number {
    if (this.lossWeights) this.loss.exe.setWeights(this.lossWeights);
    this.lossWeights = undefined;
    return (this.loss.exe.run(this.args(r))['loss'] as HostArray)[0]!;
  }

  private gradInto: Record<string, Float32Array> | undefined;

  dispose(): void {
    this.grad.exe.dispose?.();
    this.loss.exe.dispose?.();
  }
}
