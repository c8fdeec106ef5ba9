/**
 * The training step's host arithmetic in WebAssembly: the gradient sum over a step's rows, its
 * scaling to the mean, the global norm, clipping, AdamW and the finiteness check, over the
 * weights, gradients and both moments held resident in one wasm memory and updated in place.
 *
 * It computes exactly what adamw.ts's reference loops compute, bit for bit (tests/train-update-
 * kernels.test.ts holds the two together): every f32 operation there that rounds once is one f32x4
 * instruction here (+, ×, ÷ and √ of float32 operands are correctly rounded either way), and the
 * two fused multiply-adds are done in f64x2 — a·b is exact in a double, so a·b + c rounded to a
 * double and then to a float32 is the single rounding unless that double lies exactly halfway
 * between two float32s (or in float32's subnormal range); a vector with such a lane goes through
 * the reference's fmaf for those four lanes. Measured on stories15M's 15.2M params (wasm, 8×256,
 * 2 threads): the whole update, binding the weights again included, took 16% of a step as plain
 * JS loops and 2–3% of a 3.85 s step here.
 *
 * The memory is sized for the arrays named at `create` (it never grows, so the views stay valid);
 * each is padded to a whole vector: the elementwise kernels run over whole vectors and may write
 * the padding, which nothing reads.
 */
import { InternalError, KilnError } from '../../graph/errors.js';
import { Fn, loadBinaryen, type Binaryen, type Expr, type Mod } from '../../backends/wasm/fn.js';
import { demote2, promoteHi, promoteLo } from '../../backends/wasm/kernels/f64x2.js';
import { WA, type WasmMemory, type WasmModule } from '../../backends/wasm/wasm-api.js';
import { fmaf } from './adamw.js';

const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE;

/** The float32 constants of one AdamW update (adamw.ts computes them from the Python doubles). */
export interface AdamWConstants {
  readonly keep: number;
  readonly c1: number;
  readonly b1: number;
  readonly c2: number;
  readonly b2: number;
  readonly bc2Sqrt: number;
  readonly eps: number;
  readonly negStepSize: number;
}

type Exports = {
  add(dst: number, src: number, n: number): void;
  scale(x: number, n: number, s: number): void;
  mul(x: number, n: number, s: number): void;
  norm(x: number, n: number): number;
  finite(x: number, n: number): number;
  adamw(w: number, g: number, m: number, v: number, n: number, decay: number, keep: number, c1: number, b1: number, c2: number, b2: number, bc2: number, eps: number, nss: number): void;
};

function build(b: Binaryen): Uint8Array {
  const m: Mod = new b.Module();
  m.setFeatures(b.Features.SIMD128 | b.Features.NontrappingFPToInt);
  m.setMemory(1, 65536, null, [], false, false, 'mem');
  m.addMemoryImport('mem', 'env', 'mem', false);
  m.addFunctionImport('fmaf', 'env', 'fmaf', b.createType([b.f64, b.f64, b.f64]), b.f64);
  const { i32, f32, f64, v128 } = b;
  const I = (v: number) => m.i32.const(v);
  const fs = (f: Fn, v: number) => m.f32x4.splat(f.get(v));

  /**
   * out ← fmaf(a, b, c) lane by lane for f32x4 locals a, b, c (out may be c), through the f64x2
   * locals lo, hi and the f32x4 local r: a lane whose double sum is a float32 tie or tiny is redone
   * by the reference's fmaf.
   */
  const fma4 = (f: Fn, out: number, a: number, bb: number, c: number, lo: number, hi: number, r: number): Expr[] => {
    const half = (p: (x: Expr) => Expr) => m.f64x2.add(m.f64x2.mul(p(f.get(a)), p(f.get(bb))), p(f.get(c)));
    const risky = (s: number) =>
      m.v128.or(
        m.i64x2.eq(m.v128.and(f.get(s), m.i64x2.splat(m.i64.const(0x1fffffffn))), m.i64x2.splat(m.i64.const(0x10000000n))),
        m.v128.and(m.f64x2.lt(m.f64x2.abs(f.get(s)), m.f64x2.splat(m.f64.const(2 ** -126))), m.f64x2.ne(f.get(s), m.f64x2.splat(m.f64.const(0)))),
      );
    const lane = (l: number) =>
      f.set(r, m.f32x4.replace_lane(f.get(r), l, m.f32.demote(m.call('fmaf', [a, bb, c].map((x) => m.f64.promote(m.f32x4.extract_lane(f.get(x), l))), f64))));
    return [
      f.set(lo, half((x) => promoteLo({ m }, x))),
      f.set(hi, half((x) => promoteHi({ m }, x))),
      f.set(r, demote2({ m }, f.get(lo), f.get(hi))),
      m.if(m.v128.any_true(m.v128.or(risky(lo), risky(hi))), m.block(null, [0, 1, 2, 3].map(lane))),
      f.set(out, f.get(r)),
    ];
  };

  // add(dst, src, n): dst += src, whole vectors
  {
    const f = new Fn(b, m, [i32, i32, i32]);
    const i = f.local(i32);
    const at = (base: number) => m.i32.add(f.get(base), m.i32.shl(f.get(i), I(2)));
    f.finish('add', b.none, [f.for(i, I(0), f.at(2), 4, [m.v128.store(0, 16, at(0), m.f32x4.add(m.v128.load(0, 16, at(0)), m.v128.load(0, 16, at(1))))])]);
  }
  // scale(x, n, s: f64): x ← f32(x·s), the product in doubles (as a Float32Array store of a JS product)
  {
    const f = new Fn(b, m, [i32, i32, f64]);
    const [i, x] = [f.local(i32), f.local(v128)];
    const at = () => m.i32.add(f.get(0), m.i32.shl(f.get(i), I(2)));
    const s = () => m.f64x2.splat(f.get(2));
    f.finish('scale', b.none, [
      f.for(i, I(0), f.at(1), 4, [
        f.set(x, m.v128.load(0, 16, at())),
        m.v128.store(0, 16, at(), demote2({ m }, m.f64x2.mul(promoteLo({ m }, f.get(x)), s()), m.f64x2.mul(promoteHi({ m }, f.get(x)), s()))),
      ]),
    ]);
  }
  // mul(x, n, s: f32): x ← x·s in float32
  {
    const f = new Fn(b, m, [i32, i32, f32]);
    const i = f.local(i32);
    const at = () => m.i32.add(f.get(0), m.i32.shl(f.get(i), I(2)));
    f.finish('mul', b.none, [f.for(i, I(0), f.at(1), 4, [m.v128.store(0, 16, at(), m.f32x4.mul(m.v128.load(0, 16, at()), fs(f, 2)))])]);
  }
  // norm(x, n) → f32 as f64: eight lanes of fmaf(x, x, acc), summed in order, the tail into the sum
  {
    const f = new Fn(b, m, [i32, i32]);
    const [i, body, j] = [f.local(i32), f.local(i32), f.local(i32)];
    const [x0, x1, a0, a1, lo, hi, r] = [0, 0, 0, 0, 0, 0, 0].map(() => f.local(v128)) as [number, number, number, number, number, number, number];
    const sum = f.local(f32);
    const at = (off: number) => m.v128.load(off, 4, m.i32.add(f.get(0), m.i32.shl(f.get(i), I(2))));
    const lane = (v: number, l: number) => m.f32x4.extract_lane(f.get(v), l);
    const xj = () => m.f64.promote(m.f32.load(0, 4, m.i32.add(f.get(0), m.i32.shl(f.get(j), I(2)))));
    f.finish('norm', f64, [
      f.set(a0, m.v128.const(new Array(16).fill(0))),
      f.set(a1, m.v128.const(new Array(16).fill(0))),
      f.set(body, m.i32.and(f.get(1), I(~7))),
      f.for(i, I(0), f.at(body), 8, [f.set(x0, at(0)), f.set(x1, at(16)), ...fma4(f, a0, x0, x0, a0, lo, hi, r), ...fma4(f, a1, x1, x1, a1, lo, hi, r)]),
      f.set(sum, lane(a0, 0)),
      ...[1, 2, 3].map((l) => f.set(sum, m.f32.add(f.get(sum), lane(a0, l)))),
      ...[0, 1, 2, 3].map((l) => f.set(sum, m.f32.add(f.get(sum), lane(a1, l)))),
      f.for(j, f.get(body), f.at(1), 1, [f.set(sum, m.f32.demote(m.call('fmaf', [xj(), xj(), m.f64.promote(f.get(sum))], f64)))]),
      m.return(m.f64.promote(m.f32.sqrt(f.get(sum)))),
    ]);
  }
  // finite(x, n) → 1 when no element of x[0, n) is ±∞ or NaN (the exponent field all ones)
  {
    const f = new Fn(b, m, [i32, i32]);
    const [i, bad] = [f.local(i32), f.local(v128)];
    const exp = () => m.i32x4.splat(I(0x7f800000));
    const at = () => m.i32.add(f.get(0), m.i32.shl(f.get(i), I(2)));
    const body = () => m.i32.and(f.get(1), I(~3));
    f.finish('finite', i32, [
      f.set(bad, m.v128.const(new Array(16).fill(0))),
      f.for(i, I(0), body, 4, [f.set(bad, m.v128.or(f.get(bad), m.i32x4.eq(m.v128.and(m.v128.load(0, 16, at()), exp()), exp())))]),
      f.for(i, body(), f.at(1), 1, [f.set(bad, m.v128.or(f.get(bad), m.i32x4.splat(m.i32.eq(m.i32.and(m.i32.load(0, 4, at()), I(0x7f800000)), I(0x7f800000)))))]),
      m.return(m.i32.eqz(m.v128.any_true(f.get(bad)))),
    ]);
  }
  // adamw(w, g, m, v, n, decay, keep, c1, b1, c2, b2, bc2Sqrt, eps, −step size): adamw.ts's update, four at a time
  {
    const f = new Fn(b, m, [i32, i32, i32, i32, i32, i32, f32, f32, f32, f32, f32, f32, f32, f32]);
    const [W, G, M, V, N, DECAY, KEEP, C1, B1, C2, B2, BC2, EPS, NSS] = Array.from({ length: 14 }, (_, k) => k) as number[];
    const i = f.local(i32);
    const [g, w, mm, mb, vb, cg, mi, vi, lo, hi, r] = Array.from({ length: 11 }, () => f.local(v128)) as number[];
    const at = (base: number) => m.i32.add(f.get(base!), m.i32.shl(f.get(i), I(2)));
    f.finish('adamw', b.none, [
      f.for(i, I(0), f.at(N!), 4, [
        f.set(g!, m.v128.load(0, 16, at(G!))),
        f.set(w!, m.v128.load(0, 16, at(W!))),
        m.if(f.get(DECAY!), f.set(w!, m.f32x4.mul(f.get(w!), fs(f, KEEP!)))),
        f.set(mm!, fs(f, C1!)),
        f.set(mb!, m.f32x4.mul(m.v128.load(0, 16, at(M!)), fs(f, B1!))),
        ...fma4(f, mi!, g!, mm!, mb!, lo!, hi!, r!),
        f.set(cg!, m.f32x4.mul(fs(f, C2!), f.get(g!))),
        f.set(vb!, m.f32x4.mul(m.v128.load(0, 16, at(V!)), fs(f, B2!))),
        ...fma4(f, vi!, cg!, g!, vb!, lo!, hi!, r!),
        m.v128.store(0, 16, at(M!), f.get(mi!)),
        m.v128.store(0, 16, at(V!), f.get(vi!)),
        m.v128.store(
          0,
          16,
          at(W!),
          m.f32x4.add(f.get(w!), m.f32x4.div(m.f32x4.mul(fs(f, NSS!), f.get(mi!)), m.f32x4.add(m.f32x4.div(m.f32x4.sqrt(f.get(vi!)), fs(f, BC2!)), fs(f, EPS!)))),
        ),
      ]),
    ]);
  }
  for (const name of ['add', 'scale', 'mul', 'norm', 'finite', 'adamw']) m.addFunctionExport(name, name);
  if (!m.validate()) throw new InternalError('update kernels: the module does not validate');
  m.optimize();
  const bin = m.emitBinary();
  m.dispose();
  return bin;
}

let compiled: WasmModule | undefined;

/** One memory of resident training arrays and the kernels over them. */
export class UpdateKernels {
  private top = 64;
  private constructor(
    private readonly memory: WasmMemory,
    private readonly k: Exports,
    private readonly bytes: number,
  ) {}

  /** Room for arrays of these lengths, each `alloc`ed once. */
  static async create(lengths: readonly number[]): Promise<UpdateKernels> {
    const bytes = 64 + lengths.reduce((a, n) => a + 16 * Math.ceil(n / 4), 0);
    if (bytes > MAX_BYTES)
      throw new KilnError('K1020', `training holds the weights, the gradient sums, one row's gradients and AdamW's two moments in one WebAssembly memory: ${(bytes / 2 ** 30).toFixed(2)} GiB, past its 4 GiB`);
    compiled ??= new WA.Module(build(await loadBinaryen()));
    const memory = new WA.Memory({ initial: Math.ceil(bytes / PAGE), maximum: Math.ceil(bytes / PAGE) });
    const inst = new WA.Instance(compiled, { env: { mem: memory, fmaf } });
    return new UpdateKernels(memory, inst.exports as unknown as Exports, bytes);
  }

  /** A zeroed array of n floats in the memory. */
  alloc(n: number): Float32Array {
    const at = this.top;
    this.top += 16 * Math.ceil(n / 4);
    if (this.top > this.bytes) throw new InternalError(`UpdateKernels.alloc: ${n} floats past the ${this.bytes} bytes reserved`);
    return new Float32Array(this.memory.buffer as ArrayBuffer, at, n);
  }

  /** Whether `x` lives in this memory (the kernels take only such arrays). */
  holds(x: Float32Array): boolean {
    return x.buffer === this.memory.buffer;
  }

  private at(x: Float32Array): number {
    if (!this.holds(x)) throw new InternalError('UpdateKernels: an array outside its memory');
    return x.byteOffset;
  }

  /** dst += src (float32 sums). */
  add(dst: Float32Array, src: Float32Array): void {
    if (dst.length !== src.length) throw new InternalError(`UpdateKernels.add: ${dst.length} and ${src.length} elements`);
    this.k.add(this.at(dst), this.at(src), dst.length);
  }
  /** x ← f32(x·s), the product in doubles. */
  scale(x: Float32Array, s: number): void {
    this.k.scale(this.at(x), x.length, s);
  }
  /** x ← x·s in float32 (s a float32). */
  mul(x: Float32Array, s: number): void {
    this.k.mul(this.at(x), x.length, s);
  }
  /** adamw.ts's normF32. */
  norm(x: Float32Array): number {
    return this.k.norm(this.at(x), x.length);
  }
  allFinite(x: Float32Array): boolean {
    return this.k.finite(this.at(x), x.length) === 1;
  }
  adamw(w: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, decay: boolean, c: AdamWConstants): void {
    const n = w.length;
    if (g.length !== n || m.length !== n || v.length !== n) throw new InternalError(`UpdateKernels.adamw: ${n}, ${g.length}, ${m.length}, ${v.length} elements`);
    this.k.adamw(this.at(w), this.at(g), this.at(m), this.at(v), n, decay ? 1 : 0, c.keep, c.c1, c.b1, c.c2, c.b2, c.bc2Sqrt, c.eps, c.negStepSize);
  }
}
