import type { DType } from './dtype.js';
import { DTYPE_INFO } from './dtype.js';
import { type Dim, dimEq, evalDim, isStatic, shapeToString } from './dim.js';

/** The type of every value in the graph: an element type and a shape of dims. */
export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export function tensorType(dtype: DType, shape: readonly Dim[]): TensorType {
  return { dtype, shape: [...shape] };
}

export function typeToString(t: TensorType): string {
  return `${t.dtype}${shapeToString(t.shape)}`;
}

export function typeEq(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => dimEq(d, b.shape[i]!));
}

/** Element count with the symbols bound. */
export function numel(shape: readonly Dim[], env: Readonly<Record<string, number>> = {}): number {
  return shape.reduce<number>((n, d) => n * evalDim(d, env), 1);
}

export function staticNumel(shape: readonly Dim[]): number | undefined {
  return shape.every(isStatic) ? shape.reduce<number>((n, d) => n * (d as number), 1) : undefined;
}

export function byteSize(t: TensorType, env: Readonly<Record<string, number>> = {}): number {
  return numel(t.shape, env) * DTYPE_INFO[t.dtype].bytes;
}

/** Normalise a possibly negative axis; undefined when out of range. */
export function normAxis(axis: number, rank: number): number | undefined {
  const a = axis < 0 ? axis + rank : axis;
  return Number.isInteger(a) && a >= 0 && a < rank ? a : undefined;
}
