/**
 * A thin layer over binaryen for writing kernels: a function's locals by index with their types,
 * counted loops, and constants. binaryen expressions form a tree, so no node may be used twice:
 * helpers here take and return *fresh* expressions, and callers pass thunks (`() => Expr`) where
 * a value is read more than once.
 */
import type binaryenT from 'binaryen';

export type Binaryen = typeof binaryenT;
export type Mod = binaryenT.Module;
export type Expr = number;
export type Thunk = () => Expr;

let binaryenLoaded: Binaryen | undefined;

/** binaryen is ESM with top-level await: it can only be loaded by a dynamic import. */
export async function loadBinaryen(): Promise<Binaryen> {
  binaryenLoaded ??= (await import('binaryen')).default;
  return binaryenLoaded;
}

export class Fn {
  readonly types: number[];
  private readonly nParams: number;
  private label = 0;

  constructor(
    readonly b: Binaryen,
    readonly m: Mod,
    params: readonly number[],
  ) {
    this.types = [...params];
    this.nParams = params.length;
  }

  /** A new local of `type`; returns its index. */
  local(type: number): number {
    this.types.push(type);
    return this.types.length - 1;
  }
  get(i: number): Expr {
    return this.m.local.get(i, this.types[i]!);
  }
  set(i: number, v: Expr): Expr {
    return this.m.local.set(i, v);
  }
  /** A thunk reading local i. */
  at(i: number): Thunk {
    return () => this.get(i);
  }
  i32(v: number): Expr {
    return this.m.i32.const(v | 0);
  }
  /** `for (i = start; i < end; i += step) body` — the end is re-read each iteration. */
  for(i: number, start: Expr, end: Thunk, step: number | Thunk, body: readonly Expr[]): Expr {
    const m = this.m;
    const id = this.label++;
    const inc = typeof step === 'number' ? m.i32.add(this.get(i), this.i32(step)) : m.i32.add(this.get(i), step());
    return m.block(null, [
      this.set(i, start),
      m.block(`out${id}`, [
        m.br(`out${id}`, m.i32.ge_s(this.get(i), end())),
        m.loop(`top${id}`, m.block(null, [...body, this.set(i, inc), m.br(`top${id}`, m.i32.lt_s(this.get(i), end()))])),
      ]),
    ]);
  }
  /** Add the function to the module. */
  finish(name: string, results: number, body: readonly Expr[]): void {
    const b = this.b;
    this.m.addFunction(name, b.createType(this.types.slice(0, this.nParams)), results, this.types.slice(this.nParams), this.m.block(null, [...body]));
  }
}

/** a + b·c style address arithmetic on i32 thunks. */
export const addr = (m: Mod, base: Expr, index: Expr, scale = 4): Expr => m.i32.add(base, scale === 1 ? index : m.i32.mul(index, m.i32.const(scale)));
