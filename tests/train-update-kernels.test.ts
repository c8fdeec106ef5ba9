import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AdamW, clipGradNorm, fmaf, gradNorm, normF32 } from '../src/train/adamw.js';
import { UpdateKernels } from '../src/train/update-kernels.js';
import { mulberry32 } from '../src/runtime/rng.js';

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** Values as a training step holds them: ordinary, tiny (subnormal squares), zeros and huge. */
function values(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => {
    const k = r();
    if (k < 0.05) return 0;
    if (k < 0.1) return (r() - 0.5) * 1e-22;
    if (k < 0.12) return (r() - 0.5) * 1e18;
    return (r() - 0.5) * 2 ** Math.floor(r() * 12 - 6);
  });
}

describe('update kernels (wasm) equal the reference loops bit for bit', () => {
  const SIZES = [1, 3, 5, 8, 13, 1037, 4099];

  it('AdamW with and without decay, clipping, the norm, over three steps (seeds printed on failure)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.constantFrom(0.9, 0.5, 0.99), fc.constantFrom(0.95, 0.999), fc.constantFrom(1e-8, 0), async (seed, beta1, beta2, eps) => {
        const specs = SIZES.map((size, k) => ({ name: `t${k}`, size, decay: k % 2 === 0 }));
        const kern = await UpdateKernels.create([...SIZES, ...SIZES, ...SIZES, ...SIZES]);
        const opts = { beta1, beta2, eps, weightDecay: 0.1 };
        const ref = new AdamW(specs, opts);
        const fast = new AdamW(specs, opts, kern);
        const wRef = SIZES.map((n, k) => values(n, seed + k));
        const wFast = wRef.map((w) => {
          const a = kern.alloc(w.length);
          a.set(w);
          return a;
        });
        const gFast = SIZES.map((n) => kern.alloc(n));
        for (let step = 0; step < 3; step++) {
          const gRef = SIZES.map((n, k) => values(n, seed * 7 + 100 * step + k));
          gRef.forEach((g, k) => gFast[k]!.set(g));
          const nRef = clipGradNorm(gRef, step === 1 ? 1e6 : 0.5);
          const nFast = clipGradNorm(gFast, step === 1 ? 1e6 : 0.5, kern);
          expect(Object.is(nFast, nRef)).toBe(true);
          gRef.forEach((g, k) => expect(bits(gFast[k]!)).toEqual(bits(g)));
          ref.update(wRef, gRef, 1e-3 * (step + 1));
          fast.update(wFast, gFast, 1e-3 * (step + 1));
          wRef.forEach((w, k) => expect(bits(wFast[k]!)).toEqual(bits(w)));
          const [sr, sf] = [ref.state(), fast.state()];
          sr.m.forEach((m, k) => expect(bits(sf.m[k]!)).toEqual(bits(m)));
          sr.v.forEach((v, k) => expect(bits(sf.v[k]!)).toEqual(bits(v)));
        }
      }),
      { numRuns: 12 },
    );
  });

  it("takes the reference's fmaf where the double sum is a float32 tie", async () => {
    // m ← fmaf(g, 1 − β1, m·β1) with 1 − β1 = 2^-24(1 − 2^-23), g = 1 + 2^-23 and m·β1 = 1 + 2^-23:
    // the double sum is 1 + 2^-23 + 2^-24, a tie, while the exact value is 2^-70 below it
    const b = 2 ** -24 * (1 - 2 ** -23);
    const spec = [{ name: 'w', size: 6, decay: false }];
    const kern = await UpdateKernels.create([6, 6, 6, 6]);
    const w = kern.alloc(6);
    const g = kern.alloc(6);
    g.fill(1 + 2 ** -23);
    const opt = new AdamW(spec, { beta1: 1 - b, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, kern);
    opt.state().m[0]!.fill(1 + 2 ** -22);
    opt.update([w], [g], 1e-3);
    const want = fmaf(1 + 2 ** -23, b, 1 + 2 ** -23);
    expect(want).toBe(1 + 2 ** -23);
    expect(Math.fround((1 + 2 ** -23) * b + (1 + 2 ** -23))).toBe(1 + 2 ** -22); // rounding twice gets it wrong
    expect(Array.from(opt.state().m[0]!)).toEqual(new Array(6).fill(want));
  });

  it('adds, scales, and finds non-finite values as the loops do', async () => {
    const kern = await UpdateKernels.create([1037, 1037]);
    const [a, b] = [kern.alloc(1037), kern.alloc(1037)];
    a.set(values(1037, 1));
    b.set(values(1037, 2));
    const want = Float32Array.from(a, (x, i) => x + b[i]!).map((x) => x * (1 / 3));
    kern.add(a, b);
    kern.scale(a, 1 / 3);
    expect(bits(a)).toEqual(bits(want));
    expect(kern.allFinite(a)).toBe(true);
    expect(Object.is(kern.norm(a), normF32(a))).toBe(true);
    expect(gradNorm([a, b], kern)).toBe(gradNorm([a, b]));
    for (const bad of [NaN, Infinity, -Infinity]) {
      a[1036] = bad;
      expect(kern.allFinite(a)).toBe(false);
      a[1036] = 0;
      a[3] = bad;
      expect(kern.allFinite(a)).toBe(false);
      a[3] = 0;
    }
  });
});
