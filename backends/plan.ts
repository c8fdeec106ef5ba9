/**
 * What the js and wasm backends share about the memory plan (`graph.meta.memoryPlan`, written by
 * passes/plan-memory.ts): reading it, following aliases to the value that owns the bytes, and
 * trusting the plan only where the backend's own schedule agrees with it.
 */
import { InternalError } from '../graph/errors.js';
import type { Graph, Node } from '../graph/graph.js';

export interface PlannedBuffer {
  readonly value: number;
  readonly offset: number;
  readonly bytes: number;
}
export interface MemoryPlanLike {
  readonly arenaBytes: number;
  readonly bounds: Readonly<Record<string, number>>;
  readonly buffers: readonly PlannedBuffer[];
}

export function readPlan(g: Graph, backend: string): MemoryPlanLike | undefined {
  const p = g.meta['memoryPlan'] as MemoryPlanLike | undefined;
  if (p === undefined) return undefined;
  if (typeof p !== 'object' || !Array.isArray(p.buffers) || typeof p.arenaBytes !== 'number')
    throw new InternalError(`${backend} backend: graph ${g.name}: meta.memoryPlan is not a memory plan`);
  return p;
}

/** A home as far as the plan cares: an alias of another value, an arena place, or anything else. */
type AnyHome = { readonly kind: string; readonly of?: number; readonly offset?: number; readonly cap?: number };
type ArenaHome = { readonly kind: 'arena'; readonly offset: number; readonly cap: number };

/** The value whose bytes `id` uses (following aliases). */
export function rootOf(homes: ReadonlyMap<number, AnyHome>, id: number): number {
  for (let h = homes.get(id); h?.kind === 'alias'; h = homes.get(id)) id = h.of!;
  return id;
}

/**
 * Trust the plan only where the schedule agrees with it: a value's planned bytes must hold it
 * (sizes known at compile time; symbolic ones are checked when run) and must not be shared with
 * a value alive at the same time — including a node's own operands. `drop` moves a value that
 * fails out of the arena (it changes its home in `homes`) and says why.
 */
export function checkPlan(
  nodes: readonly Node[],
  sched: ReadonlyMap<number, number>,
  plan: MemoryPlanLike,
  homes: ReadonlyMap<number, AnyHome>,
  drop: (id: number, why: string) => void,
): void {
  const life = new Map<number, [number, number]>();
  for (const n of nodes) {
    const at = sched.get(n.id)!;
    if (!life.has(n.id)) life.set(n.id, [at, at]);
    for (const i of n.inputs) {
      const l = life.get(rootOf(homes, i));
      if (l) l[1] = Math.max(l[1], at);
    }
  }
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const arena = () => [...homes].filter((e): e is [number, ArenaHome] => e[1].kind === 'arena');
  for (const [id, h] of arena()) {
    const shape = byId.get(id)!.type.shape;
    const need = shape.every((d) => typeof d === 'number') ? shape.reduce<number>((a, d) => a * (d as number), 1) : 0;
    if (need > h.cap || h.offset % 4 !== 0 || h.offset + h.cap * 4 > plan.arenaBytes) drop(id, 'its planned bytes do not hold it');
  }
  const kept = arena();
  for (let i = 0; i < kept.length; i++)
    for (let j = i + 1; j < kept.length; j++) {
      const [a, ha] = kept[i]!;
      const [b, hb] = kept[j]!;
      if (homes.get(a)!.kind !== 'arena' || homes.get(b)!.kind !== 'arena') continue;
      const overlap = ha.offset < hb.offset + hb.cap * 4 && hb.offset < ha.offset + ha.cap * 4;
      const [la, lb] = [life.get(a)!, life.get(b)!];
      if (overlap && !(la[1] < lb[0] || lb[1] < la[0])) drop(b, `its planned bytes are shared with %${a} while both are alive`);
    }
}
