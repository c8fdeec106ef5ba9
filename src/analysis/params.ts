import { DTYPE_INFO } from '../../graph/dtype.js';
import type { Graph } from '../../graph/graph.js';
import { staticNumel } from '../../graph/types.js';

/** The weights a graph binds: how many tensors and elements, and their size in their dtypes. */
export interface ParamStats {
  readonly tensors: number;
  readonly count: number;
  readonly bytes: number;
  /** Names of params whose shape is symbolic (not counted: their size depends on the run). */
  readonly symbolic: readonly string[];
}

export function paramStats(g: Graph): ParamStats {
  let tensors = 0;
  let count = 0;
  let bytes = 0;
  const symbolic: string[] = [];
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    tensors++;
    const k = staticNumel(n.type.shape);
    if (k === undefined) {
      symbolic.push(String(n.attrs['name']));
      continue;
    }
    count += k;
    bytes += k * DTYPE_INFO[n.type.dtype].bytes;
  }
  return { tensors, count, bytes, symbolic };
}
