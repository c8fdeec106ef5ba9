import { describe, expect, it } from 'vitest';
import { checkSchedule, learningRate, type Schedule } from '../src/train/schedule.js';
import { thrown } from './helpers.js';

const lrs = (s: Schedule): number[] => Array.from({ length: s.steps }, (_, i) => learningRate(s, i));

describe('learning-rate schedule', () => {
  it('warms up linearly to lr at step W − 1, then follows the half cosine to minLr', () => {
    const s = { lr: 1e-3, minLr: 1e-4, warmup: 4, steps: 14 };
    const v = lrs(s);
    expect(v.slice(0, 4)).toEqual([0.25e-3, 0.5e-3, 0.75e-3, 1e-3]);
    expect(v[4]).toBe(1e-3); // the cosine starts at its top: cos 0 = 1
    expect(v[9]).toBeCloseTo(1e-4 + 0.9e-3 * 0.5, 15); // halfway: cos(π/2) = 0
    expect(v[13]).toBeCloseTo(1e-4 + 0.9e-3 * 0.5 * (1 + Math.cos((Math.PI * 9) / 10)), 15);
    for (let i = 5; i < 14; i++) expect(v[i]!).toBeLessThan(v[i - 1]!);
    expect(v[13]!).toBeGreaterThan(1e-4);
  });

  it('W = 0 is no warmup; minLr defaults to 0', () => {
    const v = lrs({ lr: 2, warmup: 0, steps: 4 });
    expect(v[0]).toBe(2);
    expect(v[2]).toBeCloseTo(1, 15);
    expect(v[3]).toBeCloseTo(1 + Math.cos((3 * Math.PI) / 4), 15);
    expect(lrs({ lr: 1, warmup: 0, steps: 1 })).toEqual([1]);
  });

  it('a constant rate when minLr = lr', () => {
    expect(new Set(lrs({ lr: 3e-4, minLr: 3e-4, warmup: 0, steps: 10 }))).toEqual(new Set([3e-4]));
  });

  it('refuses schedules that cannot run, as bad command-line values (K1016)', () => {
    const msg = (s: Schedule): string => {
      const e = thrown(() => checkSchedule(s));
      expect(e.code).toBe('K1016');
      return e.message;
    };
    expect(msg({ lr: 1, warmup: 10, steps: 10 })).toBe('--warmup (10) must be less than --steps (10): the cosine needs at least one step after the warmup');
    expect(msg({ lr: 1, warmup: 0, steps: 0 })).toBe('--steps (0) must be a whole number ≥ 1');
    expect(msg({ lr: 1, warmup: 1.5, steps: 10 })).toBe('--warmup (1.5) must be a whole number ≥ 0');
    expect(msg({ lr: 0, warmup: 0, steps: 10 })).toBe('--lr (0) must be a number above 0');
    expect(msg({ lr: Number.NaN, warmup: 0, steps: 10 })).toBe('--lr (NaN) must be a number above 0');
    expect(msg({ lr: 1, minLr: -1, warmup: 0, steps: 10 })).toBe('--min-lr (-1) must be a number ≥ 0');
    expect(msg({ lr: 1, minLr: 2, warmup: 0, steps: 10 })).toBe('--min-lr (2) must not be above --lr (1)');
    expect(() => checkSchedule({ lr: 5e-4, minLr: 5e-5, warmup: 1000, steps: 5000 })).not.toThrow();
  });

  it('a step outside the run is a caller’s bug', () => {
    expect(() => learningRate({ lr: 1, warmup: 0, steps: 3 }, 3)).toThrow(/internal error/);
    expect(() => learningRate({ lr: 1, warmup: 0, steps: 3 }, -1)).toThrow(/internal error/);
  });
});
