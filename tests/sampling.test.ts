import { describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import { Sampler, applyRepetitionPenalty, argmax, drawFrom, samplingDistribution } from '../src/runtime/sampling.js';
import { mulberry32 } from '../src/runtime/rng.js';

const close = (a: ArrayLike<number>, b: number[]) => {
  expect(a.length).toBe(b.length);
  b.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 12));
};

describe('sampling', () => {
  it('argmax takes the lowest index among ties and ignores NaN', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, 0, -1])).toBe(1);
    expect(argmax([-Infinity, -Infinity])).toBe(0);
  });

  it('repetition penalty divides positive logits and multiplies negative ones, once per distinct token', () => {
    const out = applyRepetitionPenalty([2, -2, 1, 0.5], [0, 1, 1, 7], 2);
    expect(Array.from(out)).toEqual([1, -4, 1, 0.5]);
  });

  it('temperature: the softmax of logits / T (hand-checked)', () => {
    // logits ln 1, ln 2, ln 3 at T = 1: probabilities 1/6, 2/6, 3/6
    close(samplingDistribution([0, Math.log(2), Math.log(3)], { temperature: 1 }), [1 / 6, 2 / 6, 3 / 6]);
    // at T = 0.5 the weights square: 1, 4, 9 over 14
    close(samplingDistribution([0, Math.log(2), Math.log(3)], { temperature: 0.5 }), [1 / 14, 4 / 14, 9 / 14]);
    // temperature 0 puts everything on the argmax
    close(samplingDistribution([0, 5, 5], { temperature: 0 }), [0, 1, 0]);
  });

  it('top-k keeps the k most likely, top-p the smallest set reaching p', () => {
    const logits = [Math.log(1), Math.log(2), Math.log(3), Math.log(4)]; // 0.1 0.2 0.3 0.4
    close(samplingDistribution(logits, { temperature: 1, topK: 2 }), [0, 0, 3 / 7, 4 / 7]);
    // 0.4 < 0.6, 0.4 + 0.3 ≥ 0.6: keep ids 3 and 2
    close(samplingDistribution(logits, { temperature: 1, topP: 0.6 }), [0, 0, 3 / 7, 4 / 7]);
    // 0.4 + 0.3 + 0.2 = 0.9 reaches 0.85
    close(samplingDistribution(logits, { temperature: 1, topP: 0.85 }), [0, 2 / 9, 3 / 9, 4 / 9]);
    // top-k first, then top-p within what is left: 4/7 ≥ 0.5
    close(samplingDistribution(logits, { temperature: 1, topK: 2, topP: 0.5 }), [0, 0, 0, 1]);
    // ties in top-k go to the lower id
    close(samplingDistribution([1, 1, 1], { temperature: 1, topK: 1 }), [1, 0, 0]);
  });

  it('temperature comes after top-p, as in llama.cpp: top-p reads the probabilities at T = 1', () => {
    const logits = [Math.log(1), Math.log(2), Math.log(3), Math.log(4)]; // 0.1 0.2 0.3 0.4 at T = 1
    // at T = 1, 0.4 < 0.5 keeps ids 3 and 2; then T = 0.5 squares their weights: 9 and 16 over 25.
    // (Temperature first would give 16/30 ≥ 0.5 and keep id 3 alone.)
    close(samplingDistribution(logits, { temperature: 0.5, topP: 0.5 }), [0, 0, 9 / 25, 16 / 25]);
    // top-p 0 keeps the most likely token
    close(samplingDistribution(logits, { temperature: 2, topP: 0 }), [0, 0, 0, 1]);
  });

  it('the penalty looks at the last repeatLastN tokens of the history (64 by default; 0: off)', () => {
    const z = [Math.log(2), Math.log(2)];
    const even = [0.5, 0.5];
    const penalised = [Math.SQRT2 / (Math.SQRT2 + 2), 2 / (Math.SQRT2 + 2)];
    const old = [0, ...new Array<number>(64).fill(1)]; // token 0 is 65 tokens back, token 1 is everywhere
    close(samplingDistribution(z, { temperature: 1, repetitionPenalty: 2 }, old), [2 / (2 + Math.SQRT2), Math.SQRT2 / (2 + Math.SQRT2)]);
    close(samplingDistribution(z, { temperature: 1, repetitionPenalty: 2, repeatLastN: 65 }, old), even);
    close(samplingDistribution(z, { temperature: 1, repetitionPenalty: 2, repeatLastN: 0 }, [0]), even);
    close(samplingDistribution(z, { temperature: 1, repetitionPenalty: 2, repeatLastN: 1 }, [1, 0]), penalised);
  });

  it('penalty applies before temperature: a seen token loses mass', () => {
    const p = samplingDistribution([Math.log(2), Math.log(2)], { temperature: 1, repetitionPenalty: 2 }, [0]);
    // ln2 / 2 vs ln2: weights √2 and 2
    close(p, [Math.SQRT2 / (Math.SQRT2 + 2), 2 / (Math.SQRT2 + 2)]);
  });

  it('draws follow the distribution and the same seed gives the same ids', () => {
    const probs = Float64Array.from([0.1, 0, 0.6, 0.3]);
    expect([0, 0.09, 0.1, 0.69, 0.7, 0.999999].map((u) => drawFrom(probs, u))).toEqual([0, 0, 2, 2, 3, 3]);
    const counts = [0, 0, 0, 0];
    const u = mulberry32(3);
    for (let i = 0; i < 20000; i++) counts[drawFrom(probs, u())]!++;
    expect(counts[1]).toBe(0);
    expect(counts[2]! / 20000).toBeCloseTo(0.6, 1);
    const logits = Array.from({ length: 50 }, (_, i) => Math.sin(i));
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 0.8, topK: 20, topP: 0.9 }, seed);
      return Array.from({ length: 30 }, () => s.sample(logits));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('bad options are KilnErrors', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow(KilnError);
    expect(() => new Sampler({ topP: 1.5 })).toThrow(/top-p/);
    expect(() => new Sampler({ repeatLastN: -1 })).toThrow(/repeat-last-n/);
    expect(() => new Sampler({}, 2 ** 32)).toThrow(/seed must be an integer in \[0, 4294967295\]/);
    expect(() => new Sampler({ topK: 1.5 })).toThrow(/top-k/);
  });
});
