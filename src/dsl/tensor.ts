import { type Dim, sym } from '../../graph/dim.js';
import { KilnError } from '../../graph/errors.js';
import { modelSite, userSite } from '../../graph/source.js';
import type { DType } from '../../graph/dtype.js';
import { GraphBuilder } from '../../graph/builder.js';
import type { Graph } from '../../graph/graph.js';
import type { Attrs, OpKind } from '../../graph/ops.js';
import type { TensorType } from '../../graph/types.js';
import { defineModel, type Model } from './model.js';

/**
 * Typed tensors. A `Tensor<['seq', 'dim']>` is a value of the graph whose type parameter names
 * its dims, so that `matmul([seq, dim], [hidden, out])` is an editor error. The names live only
 * in the types; at run time a tensor is a builder and a value id, and the shape rules of
 * graph/ops.ts check the real dims.
 */
export type Names = readonly string[];

/**
 * One named dim in the types. The method makes the name compare *bivariantly*, so a dim whose
 * name widened to `string` (it came from a plain number) matches any name, while two different
 * literal names do not.
 */
export interface DimTag<N extends string> {
  _(name: N): void;
}

export class Tensor<S extends Names = Names> {
  declare readonly __dims?: { readonly [K in keyof S]: DimTag<S[K] & string> };
  constructor(
    readonly m: ModelBuilder,
    readonly id: number,
  ) {}
  get type(): TensorType {
    return this.m.graph.typeOf(this.id);
  }
  get shape(): readonly Dim[] {
    return this.type.shape;
  }
  get rank(): number {
    return this.type.shape.length;
  }
}

/** A dim declared by name: symbolic (`seq`) or static (`dim` = 4096). */
export interface NamedDim<N extends string = string> {
  readonly name: N;
  readonly dim: Dim;
}

/** What a shape may list: named dims, plain numbers, or raw IR dims (`pos + seq`). */
export type DimArg = NamedDim | number | Dim;

/** The names of a shape argument; numbers and raw dims widen to `string` (they match any name). */
export type NamesOf<D extends readonly DimArg[]> = { -readonly [K in keyof D]: D[K] extends NamedDim<infer N> ? N : string };

export function toDim(d: DimArg): Dim {
  return typeof d === 'object' && 'name' in d ? d.dim : d;
}

export function toDims(ds: readonly DimArg[]): Dim[] {
  return ds.map(toDim);
}

/** Declares dims, inputs, params and outputs of one model; ops take its tensors. */
export class ModelBuilder {
  readonly graph: GraphBuilder;
  constructor(name: string) {
    this.graph = new GraphBuilder(name);
  }

  /** `dim('seq')` is a symbol bound at run time; `dim('dim', 4096)` a static size with a name. */
  private readonly dims = new Map<string, number | undefined>();

  dim<const N extends string>(name: N, size?: number): NamedDim<N> {
    if (size !== undefined && !(Number.isInteger(size) && size >= 1)) throw new KilnError('K1007', `dim '${name}' must be a positive integer, got ${size}`, modelSite());
    // one name, one size: two sizes under one name would only fail later, at an op that mixes them
    if (this.dims.has(name) && this.dims.get(name) !== size) {
      const was = this.dims.get(name);
      throw new KilnError('K1007', `dim '${name}' is declared again as ${size === undefined ? 'a symbol' : size}; it was declared as ${was === undefined ? 'a symbol' : was}`, modelSite());
    }
    this.dims.set(name, size);
    return { name, dim: size === undefined ? sym(name) : size };
  }

  input<const D extends readonly DimArg[]>(name: string, dtype: DType, shape: D): Tensor<NamesOf<D>> {
    return this.source('input', name, dtype, shape);
  }

  param<const D extends readonly DimArg[]>(name: string, shape: D, dtype: DType = 'f32'): Tensor<NamesOf<D>> {
    return this.source('param', name, dtype, shape);
  }

  state<const D extends readonly DimArg[]>(name: string, shape: D, dtype: DType = 'f32'): Tensor<NamesOf<D>> {
    return this.source('state', name, dtype, shape);
  }

  output(name: string, t: Tensor): void {
    this.graph.output(name, this.own(t, `output '${name}'`).id);
  }

  /**
   * `t`, if it is a tensor of this model's current build. A tensor is a value id, which means
   * something else in another graph: one from another model (or an earlier build) would silently
   * stand for another value here.
   */
  private own(t: Tensor, use: string): Tensor {
    if (!(t instanceof Tensor)) throw new KilnError('K1015', `${use}: expected a tensor of model '${this.graph.name}', got ${t === null ? 'null' : typeof t}`, modelSite());
    if (t.m !== this) throw new KilnError('K1015', `${use}: the tensor %${t.id} belongs to ${t.m.graph.name === this.graph.name ? 'an earlier build of this model' : `model '${t.m.graph.name}'`}, not to this build of '${this.graph.name}'; a tensor is used only in the model function that made it`, modelSite());
    return t;
  }

  /** Run `fn` inside a named scope, so its nodes read `layers.3.attn.q` in dumps. */
  scope<T>(name: string | number, fn: () => T): T {
    return this.graph.within(name, fn);
  }

  meta(key: string, value: unknown): void {
    this.graph.setMeta(key, value);
  }

  /** Add a raw IR node; the ops in ops.ts are the typed way in. */
  add<S extends Names = Names>(op: OpKind, inputs: readonly Tensor[], attrs: Attrs = {}): Tensor<S> {
    return new Tensor<S>(this, this.graph.add(op, inputs.map((t, i) => this.own(t, `${op} operand ${i}`).id), attrs));
  }

  build(): Graph {
    const g = this.graph.build();
    if (g.outputs.length === 0) throw new KilnError('K1015', `model '${g.name}' declares no outputs: call m.output(name, tensor) for what it computes`);
    return g;
  }

  private source<S extends Names>(op: 'input' | 'param' | 'state', name: string, dtype: DType, shape: readonly DimArg[]): Tensor<S> {
    const bad = shape.find((d) => typeof d === 'number' && !(Number.isInteger(d) && d >= 1));
    if (bad !== undefined) throw new KilnError('K1007', `${op} '${name}': size ${String(bad)} in its shape must be a positive integer`, modelSite());
    return this.add<S>(op, [], { name, dtype, shape: toDims(shape) });
  }
}

/** A model from a build function: `export default model('llama', (m) => { ... m.output('logits', x) })`. */
export function model(name: string, fn: (m: ModelBuilder) => void): Model {
  const site = userSite();
  return defineModel(name, () => {
    const m = new ModelBuilder(name);
    const r: unknown = fn(m);
    // An async body would declare its outputs after build() has run: "no outputs" would mislead.
    if (typeof (r as { then?: unknown } | undefined)?.then === 'function')
      throw new KilnError('K1013', `model '${name}': the model function returned a Promise; it must declare the graph synchronously (no async, no await)`, site);
    return m.build();
  });
}
