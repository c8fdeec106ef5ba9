import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AdamW, clipGradNorm, decays, fmaf, gradNorm, normF32, type AdamWState } from '../src/train/adamw.js';
import { thrown } from './helpers.js';

const f32 = Math.fround;
const bitsOf = (a: ArrayLike<number>): string => Array.from(new Uint32Array(Float32Array.from(a).buffer), (u) => u.toString(16).padStart(8, '0')).join(' ');
const fromBits = (hex: string): Float32Array => new Float32Array(Uint32Array.from(hex.split(' '), (h) => parseInt(h, 16)).buffer);

/** Exact a·b + c rounded to the nearest float32 (ties to even), by big-integer arithmetic. */
function exactFmaf(a: number, b: number, c: number): number {
  const I = (x: number): bigint => BigInt(x * 2 ** 149); // every float32 is an integer times 2^-149
  const target = I(a) * I(b) + I(c) * 2n ** 149n; // scaled by 2^298
  const r0 = f32(a * b + c);
  const next = (x: number, dir: 1 | -1): number => {
    const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
    if (x === 0) return dir * 2 ** -149;
    return new Float32Array(new Uint32Array([(x > 0) === (dir > 0) ? u + 1 : u - 1]).buffer)[0]!;
  };
  let best = r0;
  let bestErr: bigint | undefined;
  for (const cand of [next(r0, -1), r0, next(r0, 1)]) {
    const d = I(cand) * 2n ** 149n - target;
    const err = d < 0n ? -d : d;
    const even = (new Uint32Array(new Float32Array([cand]).buffer)[0]! & 1) === 0;
    if (bestErr === undefined || err < bestErr || (err === bestErr && even)) [best, bestErr] = [cand, err];
  }
  return best;
}

describe('fmaf', () => {
  it('rounds once where rounding the double sum would round twice', () => {
    // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: exactly halfway between two float32s
    const a = 1 + 2 ** -12;
    const lo = 1 + 2 ** -11;
    const hi = lo + 2 ** -23;
    expect(fmaf(a, a, 2 ** -80)).toBe(hi); // the double sum is the tie; the exact value is above it
    expect(f32(a * a + 2 ** -80)).toBe(lo); // …which naive rounding gets wrong
    expect(fmaf(a, a, -(2 ** -80))).toBe(lo);
    expect(fmaf(a, a, 0)).toBe(lo); // a true tie: to even
    expect(fmaf(3, 0.5, 0.25)).toBe(1.75);
  });

  it('equals exact rounding on random float32 triples (with cancellation)', () => {
    const float = fc.float({ noNaN: true, noDefaultInfinity: true, min: f32(-1e15), max: f32(1e15) });
    fc.assert(
      fc.property(float, float, float, fc.boolean(), (a, b, c, cancel) => {
        const cc = cancel ? f32(-(a * b) + c * 2 ** -20) : c;
        const want = exactFmaf(a, b, cc);
        expect(Object.is(fmaf(a, b, cc), want) || (fmaf(a, b, cc) === 0 && want === 0)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

/*
 * The PyTorch case: tensors and gradients from a 32-bit LCG (24-bit values, exact in float32 and in
 * Python), three AdamW steps with clipping (steps 1 and 3 clip, step 2 does not), made with
 * Debian's torch 1.13.1 on this machine kind (CPU capability AVX2) by:
 *
 *   import struct, torch
 *   torch.set_num_threads(1)
 *   x = 12345
 *   def u():
 *       global x
 *       x = (x * 1664525 + 1013904223) & 0xFFFFFFFF
 *       return (x >> 8) / 2**24 - 0.5
 *   hexes = lambda t: ' '.join('%08x' % struct.unpack('<I', struct.pack('<f', v))[0] for v in t.flatten().tolist())
 *   w = torch.nn.Parameter(torch.tensor([[u() for _ in range(37)]]))
 *   b = torch.nn.Parameter(torch.tensor([u() for _ in range(5)]))
 *   opt = torch.optim.AdamW([{'params': [w], 'weight_decay': 0.1}, {'params': [b], 'weight_decay': 0.0}],
 *                           lr=1e-3, betas=(0.9, 0.95), eps=1e-8, foreach=False)
 *   norms = []
 *   for lr, scale in [(1e-3, 1.0), (2e-3, 0.25), (1.5e-3, 2.0)]:
 *       for g in opt.param_groups: g['lr'] = lr
 *       w.grad = torch.tensor([[u() * scale for _ in range(37)]])
 *       b.grad = torch.tensor([u() * scale for _ in range(5)])
 *       norms.append(torch.nn.utils.clip_grad_norm_([w, b], 1.0))
 *       opt.step()
 *   print('norms', hexes(torch.stack(norms)))
 *   for name, t in [('w', w), ('b', b), ('mw', opt.state[w]['exp_avg']), ('vw', opt.state[w]['exp_avg_sq']),
 *                   ('mb', opt.state[b]['exp_avg']), ('vb', opt.state[b]['exp_avg_sq'])]:
 *       print(name, hexes(t.detach()))
 */
const TORCH = {
  norms: '3fced7d3 3efbf214 40590c2c',
  w: 'bef6e9b7 bef9a8f1 3d2569fd 3e0ceaf9 3ecfc266 bec74968 bb2e6940 3d3a2075 3dca3012 3e8f14c1 beedb971 3e781dee 3ef092e1 bed911cc 3e4cf740 bd297f4e bdd4d128 3eea050a bdbd8e19 3ee61b52 3efa760f 3e2a41f8 bda176d7 3b0e5d21 be57f639 bda46211 3e310e43 beafa44c bed0a95c 3eb6ba5b be44b120 befe0a9b bd2949d8 be50abf2 3d9a20ac 3eebfa5e bef970b7',
  b: '3e91707b be4cb8f0 be3bafe9 3ee7a96e 3d32fd87',
  mw: '3af66cfd 3d2ed21e 3ce00212 bcef2047 3d2c5b81 3c29eb78 bb8b0eb7 3b96ecec 3c3434ae 3ce877b2 3cb24951 3a7e0cf9 bc155f74 bc141303 bb9107ac bb332a27 3ca3c605 3be12125 bc9ff23a 3cd78501 3ce84b54 bc834e58 3ca9defa bcbf459b bcadb97f 3cb4fbde 3c51e983 3a825050 bcc637ac bc62b0f8 3cdf2e66 3c272e4f 3cabd172 bd3cb581 bc562f4c bc31ae68 3c8b6457',
  vw: '3a80b53e 3b8879fa 3b4d069d 3b815d03 3b8f5120 3af94ebd 3941d845 3aafac37 3ba0848a 3b07bad2 3a7ee1ed 3ae146e5 395ec1b8 3ae291a1 39f53b35 3a71f92d 3b7460c3 3b362fcc 3b51fd49 3b6167f2 3ae43309 3b1caf92 3b536d69 3b37917a 3b495243 3adc1668 3af3e29c 3b2c412a 3b2903b2 39e9c68f 3b2b92b4 3ac56986 3a8d5dba 3b8d2db4 3a6d3299 3b9ca571 3af50757',
  mb: 'bd36d00a bbdd0e2a 3d27afa1 bb215e0b 3d238368',
  vb: '3ba5ea04 3b9a440d 3b69e407 3aed7054 3bbe96e5',
};

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return (x >>> 8) / 2 ** 24 - 0.5;
  };
}

const SPECS = [
  { name: 'w', size: 37, decay: true },
  { name: 'b', size: 5, decay: false },
];
const OPTS = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
const STEPS: [number, number][] = [
  [1e-3, 1.0],
  [2e-3, 0.25],
  [1.5e-3, 2.0],
];

describe('AdamW and clip_grad_norm_ against PyTorch 1.13 (float32, CPU)', () => {
  it('gives torch’s bits for weights, moments and norms over three clipped steps', () => {
    const u = lcg(12345);
    const w = Float32Array.from({ length: 37 }, u);
    const b = Float32Array.from({ length: 5 }, u);
    const opt = new AdamW(SPECS, OPTS);
    const norms: number[] = [];
    for (const [lr, scale] of STEPS) {
      const gw = Float32Array.from({ length: 37 }, () => u() * scale);
      const gb = Float32Array.from({ length: 5 }, () => u() * scale);
      norms.push(clipGradNorm([gw, gb], 1.0));
      opt.update([w, b], [gw, gb], lr);
    }
    const st = opt.state();
    expect(bitsOf(norms)).toBe(TORCH.norms);
    expect(bitsOf(w)).toBe(TORCH.w);
    expect(bitsOf(b)).toBe(TORCH.b);
    expect(bitsOf(st.m[0]!)).toBe(TORCH.mw);
    expect(bitsOf(st.v[0]!)).toBe(TORCH.vw);
    expect(bitsOf(st.m[1]!)).toBe(TORCH.mb);
    expect(bitsOf(st.v[1]!)).toBe(TORCH.vb);
    expect(st.step).toBe(3);
    expect(Array.from(fromBits(TORCH.b))).toEqual(Array.from(b));
  });

  it('a resumed optimizer continues bit for bit', () => {
    const run = (split: boolean): string => {
      const u = lcg(7);
      const w = Float32Array.from({ length: 37 }, u);
      const b = Float32Array.from({ length: 5 }, u);
      let opt = new AdamW(SPECS, OPTS);
      STEPS.forEach(([lr, scale], i) => {
        if (split && i === 1) {
          const s = opt.state();
          const saved: AdamWState = { ...s, m: s.m.map((a) => a.slice()), v: s.v.map((a) => a.slice()) };
          opt = new AdamW(SPECS, OPTS);
          opt.restore(saved);
        }
        const gw = Float32Array.from({ length: 37 }, () => u() * scale);
        const gb = Float32Array.from({ length: 5 }, () => u() * scale);
        clipGradNorm([gw, gb], 1.0);
        opt.update([w, b], [gw, gb], lr);
      });
      return bitsOf(w) + bitsOf(b) + bitsOf(opt.state().m[0]!) + bitsOf(opt.state().v[1]!);
    };
    expect(run(true)).toBe(run(false));
  });
});

describe('AdamW', () => {
  it('is torch’s formula: one step from zero moments', () => {
    // t = 1: m̂ = g, v̂ = g², so w ← w·(1 − lr·wd) − lr·g/(|g| + eps) ≈ w(1 − lr·wd) − lr·sign(g)
    const opt = new AdamW([{ name: 'w', size: 3, decay: true }], { weightDecay: 0.5 });
    const w = Float32Array.from([1, -2, 0.5]);
    opt.update([w], [Float32Array.from([0.25, -4, 0])], 0.1);
    expect(w[0]).toBeCloseTo(1 * 0.95 - 0.1, 6);
    expect(w[1]).toBeCloseTo(-2 * 0.95 + 0.1, 6);
    expect(w[2]).toBeCloseTo(0.5 * 0.95, 7); // a zero gradient: decay only
  });

  it('decays only tensors marked for it; the rule marks matrices', () => {
    expect([decays([4, 4]), decays([2, 3, 4]), decays([4]), decays([])]).toEqual([true, true, false, false]);
    const opt = new AdamW(
      [
        { name: 'm', size: 2, decay: true },
        { name: 'n', size: 2, decay: false },
      ],
      { weightDecay: 0.1 },
    );
    const m = Float32Array.from([1, 1]);
    const n = Float32Array.from([1, 1]);
    opt.update([m, n], [new Float32Array(2), new Float32Array(2)], 0.01);
    expect(Array.from(n)).toEqual([1, 1]);
    expect(m[0]).toBe(f32(1 - 0.01 * 0.1));
  });

  it('refuses bad hyperparameters (K1016) and a checkpoint of other tensors (K1025)', () => {
    expect(thrown(() => new AdamW([], { beta1: 1 })).message).toBe('--beta1 (1) must be at least 0 and less than 1');
    expect(thrown(() => new AdamW([], { beta2: -0.1 })).code).toBe('K1016');
    expect(thrown(() => new AdamW([], { eps: Number.NaN })).message).toBe('--eps (NaN) must be a number ≥ 0');
    expect(thrown(() => new AdamW([], { weightDecay: -1 })).message).toBe('--weight-decay (-1) must be a number ≥ 0');
    const a = new AdamW(SPECS);
    const s = a.state();
    const other = new AdamW([SPECS[0]!, { name: 'c', size: 5, decay: false }]);
    const e = thrown(() => other.restore(s));
    expect(e.code).toBe('K1025');
    expect(e.message).toBe("the checkpoint's optimizer state has 'b' where this model has 'c' (tensor 1)");
    const short = new AdamW([SPECS[0]!, { name: 'b', size: 6, decay: false }]);
    expect(thrown(() => short.restore(s)).message).toBe("the checkpoint's optimizer state has 5 elements of m for 'b', which has 6");
    expect(thrown(() => a.restore({ ...s, step: -1 })).message).toBe("the checkpoint's optimizer state has step -1, not a whole number ≥ 0");
  });
});

describe('gradient norm and clipping', () => {
  it('normF32 is the float32 2-norm (8 lanes, tail, √), within an ulp of the exact norm', () => {
    fc.assert(
      // values whose squares stay normal float32s (smaller ones underflow to 0, in torch too)
      fc.property(fc.array(fc.integer({ min: -(2 ** 24), max: 2 ** 24 }).map((i) => i / 2 ** 17), { maxLength: 70 }), (xs) => {
        const exact = Math.sqrt(xs.reduce((s, x) => s + x * x, 0));
        expect(Math.abs(normF32(xs) - exact)).toBeLessThanOrEqual(exact * 2 ** -21 + 1e-30);
      }),
    );
    expect(normF32([3, 4])).toBe(5);
    expect(normF32([])).toBe(0);
  });

  it('clips to max_norm only when the norm is above it, and returns the norm before clipping', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    expect(gradNorm(g)).toBe(5);
    expect(clipGradNorm(g, 10)).toBe(5);
    expect(Array.from(g[1]!)).toEqual([0, 4]); // under the limit: untouched
    expect(clipGradNorm(g, 1)).toBe(5);
    const coef = f32(f32(1 / f32(5 + f32(1e-6))) * 1);
    expect(Array.from(g[0]!)).toEqual([f32(3 * coef), 0]);
    expect(gradNorm(g)).toBeCloseTo(1, 5);
    expect(clipGradNorm([], 1)).toBe(0);
    expect(thrown(() => clipGradNorm(g, 0)).message).toBe('--clip (0) must be a number above 0');
  });

  it('leaves gradients alone when the norm is not finite', () => {
    const g = [Float32Array.from([1, Number.POSITIVE_INFINITY])];
    expect(clipGradNorm(g, 1)).toBe(Number.POSITIVE_INFINITY);
    expect(g[0]![0]).toBe(1);
  });
});
