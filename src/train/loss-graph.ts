/**
 * The graphs training runs, made from a model graph as the DSL builds it (input `tokens` i32[seq]
 * → output `logits` f32[seq, vocab]):
 *
 * - `lossGraph`: inputs `tokens` and `targets` (both i32[seq], the model's own tokens symbol),
 *   output `loss` f32[1] = mean over the sequence of cross_entropy(logits, targets): the mean
 *   next-token loss of one window when targets are the tokens shifted by one.
 * - `trainingGraph`: the loss graph through the autodiff pass, so it also has `grad:<param>`
 *   outputs for every f32 param (or those named).
 *
 * The model's nodes are copied as they are (scopes, source positions, `meta.llama`); the loss
 * nodes sit in scope `loss`. Model outputs other than `logits` go, with the nodes only they read.
 */
import { dimEq, dimToString } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { typeToString } from '../../graph/types.js';
import { autodiff } from '../../passes/autodiff.js';
import { Rewriter, dropDead } from '../../passes/rewrite.js';

export interface LossGraphOptions {
  /** Keep the model's `logits` as an output next to `loss`. Default false. */
  readonly keepLogits?: boolean;
  /**
   * Dropout with this probability on every residual branch (see `residualBranches`), drawn by
   * `dropout_mask` from the input `dropout_key` i32[2] = [seed, counter]. Default 0: none.
   */
  readonly dropout?: number;
}

/** The name of the dropout key input of a loss graph made with `dropout`. */
export const DROPOUT_KEY = 'dropout_key';

/**
 * The residual branches of a model: for each \`add\` whose second operand was computed inside a
 * sub-scope of the add's own scope and whose first was not (\`x + f(x)\` as nn.residual builds it
 * within a block's scope: \`layers.3\` adds \`layers.3.attn…\`), that second operand's id.
 */
export function residualBranches(model: Graph): Map<number, number> {
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  const out = new Map<number, number>();
  for (const n of model.nodes) {
    if (n.op !== 'add' || n.scope === '') continue;
    const inside = (id: number) => (byId.get(id)?.scope ?? '').startsWith(`${n.scope}.`);
    if (inside(n.inputs[1]!) && !inside(n.inputs[0]!)) out.set(n.id, n.inputs[1]!);
  }
  return out;
}

export interface TrainingGraphOptions extends LossGraphOptions {
  /** The params to differentiate. Default: every f32 param of the model. */
  readonly params?: readonly string[];
}

function fail(msg: string): never {
  throw new KilnError('K1018', `lossGraph: ${msg}`);
}

/** The model with `targets` in and the mean cross-entropy `loss` (f32[1]) out. */
export function lossGraph(model: Graph, opts: LossGraphOptions = {}): Graph {
  const logitsOut = model.outputs.find((o) => o.name === 'logits');
  if (!logitsOut) fail(`graph ${model.name} has no output 'logits' (its outputs: ${model.outputs.map((o) => o.name).join(', ') || 'none'})`);
  const tokens = model.nodes.find((n) => n.op === 'input' && n.attrs['name'] === 'tokens');
  if (!tokens) fail(`graph ${model.name} has no input 'tokens'`);
  if (tokens.type.dtype !== 'i32' || tokens.type.shape.length !== 1) fail(`input 'tokens' must be i32[seq], it is ${typeToString(tokens.type)}`);
  const logits = model.nodes.find((n) => n.id === logitsOut.value)!;
  const S = tokens.type.shape[0]!;
  if (logits.type.dtype !== 'f32' || logits.type.shape.length !== 2 || !dimEq(logits.type.shape[0]!, S))
    fail(`output 'logits' must be f32[${dimToString(S)}, vocab] (one row per token), it is ${typeToString(logits.type)}`);
  if (model.nodes.some((n) => n.op === 'input' && n.attrs['name'] === 'targets')) fail(`graph ${model.name} already has an input 'targets'`);
  if (model.outputs.some((o) => o.name === 'loss')) fail(`graph ${model.name} already has an output 'loss'`);

  const p = opts.dropout ?? 0;
  if (!(p >= 0 && p < 1)) fail(`dropout ${p} must be at least 0 and less than 1`);
  const branches = p > 0 ? residualBranches(model) : new Map<number, number>();
  const byId = new Map(model.nodes.map((n) => [n.id, n]));
  if (p > 0 && branches.size === 0) fail(`dropout: graph ${model.name} has no residual branches (x + f(x) built inside a block's scope) to drop out`);
  const r = new Rewriter(model, 'loss-graph');
  let targets = -1;
  let key = -1;
  let stream = 0;
  for (const n of model.nodes) {
    const branch = branches.get(n.id);
    if (branch !== undefined) {
      // x + f(x)·mask: the mask of site `stream`, counted in graph order
      const b = byId.get(branch)!;
      const mask = r.emit('dropout_mask', [key], { shape: [...b.type.shape], p, stream: stream++ }, { scope: `${b.scope}.dropout` });
      const dropped = r.emit('mul', [r.get(branch), mask], {}, { scope: `${b.scope}.dropout` });
      r.set(n.id, r.emit('add', [r.get(n.inputs[0]!), dropped], n.attrs, { scope: n.scope, ...(n.loc ? { loc: n.loc } : {}) }));
    } else r.copy(n);
    if (n.id === tokens.id) {
      targets = r.emit('input', [], { name: 'targets', dtype: 'i32', shape: [S] }, { scope: n.scope });
      if (p > 0) key = r.emit('input', [], { name: DROPOUT_KEY, dtype: 'i32', shape: [2] }, { scope: n.scope });
    }
  }
  const at = { scope: 'loss' };
  const perToken = r.emit('cross_entropy', [r.get(logits.id), targets], {}, at); // [seq]
  const loss = r.emit('mean', [perToken], { axis: 0 }, at); // [1]
  const outputs = [{ name: 'loss', value: loss }, ...(opts.keepLogits ? [{ name: 'logits', value: r.get(logits.id) }] : [])];
  return dropDead(r.finish({ outputs }), 'loss-graph', (n) => n.op === 'input').graph;
}

/** lossGraph through autodiff: outputs `loss` and `grad:<param>` for every f32 param (or those named). */
export function trainingGraph(model: Graph, opts: TrainingGraphOptions = {}): Graph {
  return autodiff(lossGraph(model, opts), { loss: 'loss', ...(opts.params ? { params: opts.params } : {}) });
}
