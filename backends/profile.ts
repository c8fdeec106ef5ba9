/**
 * Kernel profiles (executables compiled with `profile`): a node's time is what its kernel took,
 * summed over runs. `byOp` adds them up per op (fused nodes per pattern), largest first, for
 * `kiln run --profile` and the bench's notes.
 */
import type { Node } from '../graph/graph.js';
import type { NodeTime } from './backend.js';

export const opName = (n: Node): string => (n.op === 'fused' ? `fused:${String(n.attrs['pattern'])}` : n.op);

export interface OpTime {
  readonly op: string;
  readonly ms: number;
  readonly nodes: number;
  /** Share of all kernels' time, 0–1. */
  readonly share: number;
}

export function byOp(times: readonly NodeTime[]): OpTime[] {
  const acc = new Map<string, { ms: number; nodes: number }>();
  for (const t of times) {
    const a = acc.get(t.op) ?? { ms: 0, nodes: 0 };
    a.ms += t.ms;
    a.nodes++;
    acc.set(t.op, a);
  }
  const total = [...acc.values()].reduce((s, a) => s + a.ms, 0) || 1;
  return [...acc].map(([op, a]) => ({ op, ms: a.ms, nodes: a.nodes, share: a.ms / total })).sort((p, q) => q.ms - p.ms);
}

/** A plain-text table of `byOp`, per run (ms divided by the runs the kernels made). */
export function formatProfile(times: readonly NodeTime[], runs: number): string {
  const rows = byOp(times);
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const lines = rows.map((r) => `${r.op.padEnd(20)} ${(r.ms / runs).toFixed(3).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)}%  ${String(r.nodes).padStart(4)} nodes`);
  return [`${'op'.padEnd(20)} ${'per run'.padStart(12)} ${'share'.padStart(6)}`, ...lines, `${'all kernels'.padEnd(20)} ${(total / runs).toFixed(3).padStart(9)} ms`].join('\n');
}

/**
 * The host side of a profile build: the program calls `tick(-1)` as its kernels start and
 * `tick(id)` after node id's kernel; each node is charged the time since the previous tick.
 */
export class KernelTimer {
  private readonly acc = new Map<number, { ms: number; runs: number }>();
  private readonly byId: Map<number, Node>;
  private last = 0;

  /** `nodes`: the program's nodes (a backend's expanded list, where it inlines fused bodies). */
  constructor(nodes: readonly Node[]) {
    this.byId = new Map(nodes.map((n) => [n.id, n]));
  }

  readonly tick = (id: number): void => {
    const now = performance.now();
    if (id >= 0) {
      const t = this.acc.get(id) ?? { ms: 0, runs: 0 };
      t.ms += now - this.last;
      t.runs++;
      this.acc.set(id, t);
    }
    this.last = now;
  };

  times(): NodeTime[] {
    return [...this.acc].map(([id, t]) => {
      const n = this.byId.get(id);
      return { id, op: n ? opName(n) : '?', scope: n?.scope ?? '', ms: t.ms, runs: t.runs };
    });
  }
}
