/**
 * dropout_mask: element i (row-major) is 1/(1 − p) where hash(seed, step, stream, i) keeps it,
 * else 0; key = [seed, step]. The hash is graph/random.ts's in i32 arithmetic (i32.mul wraps as
 * Math.imul, shr_u is >>>), so its bits are the same; four elements at a time in i32x4 lanes, then
 * one by one. Kept means (h >>> 8) ≥ ⌈p·2²⁴⌉ (dropoutThreshold), an integer comparison; the
 * threshold, the scale and the stream's product are folded at compile time.
 */
import { dropoutThreshold } from '../../../graph/random.js';
import type { Expr } from '../fn.js';
import type { WasmKernel } from './kernel.js';

const [C_I, C_1, C_2] = [0x9e3779b9 | 0, 0x85ebca6b | 0, 0xc2b2ae35 | 0];

export const dropoutMaskKernel: WasmKernel = (c) => {
  const { m, f, b } = c;
  const p = c.node.attrs['p'] as number;
  const sm = Math.imul(c.node.attrs['stream'] as number, 0x632be5ab);
  const threshold = dropoutThreshold(p);
  const scale = Math.fround(1 / (1 - p));
  const I = (v: number) => m.i32.const(v);
  const n = () => c.numel(c.node.type.shape);
  const [i, end4, h, seed, step] = [f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32), f.local(b.i32)];
  const [iv, hv, seedv, stepv] = [f.local(b.v128), f.local(b.v128), f.local(b.v128), f.local(b.v128)];
  const splat = (v: number) => m.i32x4.splat(I(v));
  /** fmix32 of local x after x ^= y, on i32 or i32x4 */
  const fmix = (x: number, y: Expr, vec: boolean): Expr[] => {
    const xor = (a: Expr, e: Expr) => (vec ? m.v128.xor(a, e) : m.i32.xor(a, e));
    const shr = (k: number) => (vec ? m.i32x4.shr_u(f.get(x), I(k)) : m.i32.shr_u(f.get(x), I(k)));
    const mul = (k: number) => (vec ? m.i32x4.mul(f.get(x), splat(k)) : m.i32.mul(f.get(x), I(k)));
    return [
      f.set(x, xor(f.get(x), y)),
      f.set(x, xor(f.get(x), shr(16))),
      f.set(x, mul(C_1)),
      f.set(x, xor(f.get(x), shr(13))),
      f.set(x, mul(C_2)),
      f.set(x, xor(f.get(x), shr(16))),
    ];
  };
  return [
    f.set(seed, m.i32.load(0, 4, c.in(0))),
    f.set(step, m.i32.load(4, 4, c.in(0))),
    f.set(seedv, m.i32x4.splat(f.get(seed))),
    f.set(stepv, m.i32x4.splat(f.get(step))),
    f.set(iv, m.v128.const([0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0])),
    f.set(end4, m.i32.and(n(), I(~3))),
    f.for(i, I(0), f.at(end4), 4, [
      f.set(hv, f.get(iv)),
      ...fmix(hv, splat(C_I), true),
      ...fmix(hv, splat(sm), true),
      ...fmix(hv, f.get(stepv), true),
      ...fmix(hv, f.get(seedv), true),
      // (h >>> 8) < 2^24 and the threshold ≤ 2^24: a signed comparison is exact
      m.v128.store(0, 4, m.i32.add(c.out(), m.i32.shl(f.get(i), I(2))), m.v128.and(m.i32x4.ge_s(m.i32x4.shr_u(f.get(hv), I(8)), splat(threshold)), m.f32x4.splat(m.f32.const(scale)))),
      f.set(iv, m.i32x4.add(f.get(iv), splat(4))),
    ]),
    f.for(i, f.get(end4), n, 1, [
      f.set(h, f.get(i)),
      ...fmix(h, I(C_I), false),
      ...fmix(h, I(sm), false),
      ...fmix(h, f.get(step), false),
      ...fmix(h, f.get(seed), false),
      m.f32.store(0, 4, m.i32.add(c.out(), m.i32.shl(f.get(i), I(2))), m.select(m.i32.ge_s(m.i32.shr_u(f.get(h), I(8)), I(threshold)), m.f32.const(scale), m.f32.const(0))),
    ]),
  ];
};
