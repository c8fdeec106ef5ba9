/**
 * Moving f32x4 values through f64x2 arithmetic, for kernels that compute in doubles four elements
 * at a time (softmax, rmsnorm, SiLU): each operand expression is used once.
 */
import type { Expr, Mod } from '../fn.js';

/** What these need of a kernel's context: the module (the training step's update kernels use them too). */
type WasmCtx = { readonly m: Mod };

const ZERO = new Array<number>(16).fill(0);

/** f32 lanes 0–1 of `v` as f64x2. */
export const promoteLo = (c: WasmCtx, v: Expr): Expr => c.m.f64x2.promote_low_f32x4(v);

/** f32 lanes 2–3 of `v` as f64x2. */
export const promoteHi = (c: WasmCtx, v: Expr): Expr =>
  c.m.f64x2.promote_low_f32x4(c.m.i8x16.shuffle(v, c.m.v128.const(ZERO), [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]));

/** Lanes 0–1 of `a` then lanes 0–1 of `b` (32-bit lanes), as conversions from f64x2 leave them. */
export const lowHalves = (c: WasmCtx, a: Expr, b: Expr): Expr => c.m.i8x16.shuffle(a, b, [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]);

/** Two f64x2 rounded to f32 and joined into one f32x4 (lo's lanes first). */
export const demote2 = (c: WasmCtx, lo: Expr, hi: Expr): Expr => lowHalves(c, c.m.f32x4.demote_f64x2_zero(lo), c.m.f32x4.demote_f64x2_zero(hi));
