/**
 * checkPlan (backends/plan.ts), which the js and wasm backends share: a planned place is trusted
 * only if it holds its value and no value alive at the same time shares its bytes.
 */
import { describe, expect, it } from 'vitest';
import { checkPlan, type MemoryPlanLike, rootOf } from '../backends/plan.js';
import { GraphBuilder } from '../graph/builder.js';

type H = { kind: 'arena'; offset: number; cap: number } | { kind: 'alias'; of: number } | { kind: 'own' };

function setup(places: Record<'a' | 'b' | 'c', { offset: number; cap: number }>) {
  const g = new GraphBuilder('plan');
  const x = g.add('input', [], { name: 'x', dtype: 'f32', shape: [4] });
  const a = g.add('neg', [x], {});
  const b = g.add('exp', [a], {});
  const c = g.add('add', [a, b], {});
  g.output('y', g.add('neg', [c], {}));
  const graph = g.build();
  const ids = { a, b, c };
  const homes = new Map<number, H>(Object.entries(places).map(([k, p]) => [ids[k as 'a'], { kind: 'arena', ...p }]));
  const sched = new Map(graph.nodes.map((n, i) => [n.id, i]));
  const plan: MemoryPlanLike = { arenaBytes: 64, bounds: {}, buffers: [] };
  const dropped: [number, string][] = [];
  checkPlan(graph.nodes, sched, plan, homes, (id, why) => {
    dropped.push([id, why]);
    homes.set(id, { kind: 'own' });
  });
  return { ids, dropped };
}

describe('checkPlan', () => {
  it('keeps a plan whose places hold their values and reuse only dead bytes', () => {
    // c is computed while a and b are alive (it reads both), so each has a place of its own
    expect(setup({ a: { offset: 0, cap: 4 }, b: { offset: 16, cap: 4 }, c: { offset: 32, cap: 4 } }).dropped).toEqual([]);
  });
  it('drops a place shared with a value alive at the same time, and one too small', () => {
    const { ids, dropped } = setup({ a: { offset: 0, cap: 4 }, b: { offset: 8, cap: 4 }, c: { offset: 32, cap: 2 } });
    expect(dropped).toEqual([
      [ids.c, 'its planned bytes do not hold it'],
      [ids.b, `its planned bytes are shared with %${ids.a} while both are alive`],
    ]);
  });
  it('follows aliases to the value that owns the bytes', () => {
    const homes = new Map<number, H>([[3, { kind: 'alias', of: 2 }], [2, { kind: 'alias', of: 1 }], [1, { kind: 'own' }]]);
    expect(rootOf(homes, 3)).toBe(1);
    expect(rootOf(homes, 1)).toBe(1);
  });
});
