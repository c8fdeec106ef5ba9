/**
 * Element types. Only f32 and i32 exist today; the union is open so that f16 and quantised
 * block types (q8_0: 32 values share one f16 scale) can join without touching the op rules.
 */
export type DType = 'f32' | 'i32';

export const DTYPES: readonly DType[] = ['f32', 'i32'];

export interface DTypeInfo {
  /** Bytes per element (for block types: bytes per block / elements per block). */
  readonly bytes: number;
  readonly float: boolean;
}

export const DTYPE_INFO: Readonly<Record<DType, DTypeInfo>> = {
  f32: { bytes: 4, float: true },
  i32: { bytes: 4, float: false },
};

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}
