/**
 * Fresh weights for training from scratch, as GPT-2 and llama2.c initialise them: every matrix
 * normal(0, 0.02), the projections that end a residual branch (attention output, FFN down)
 * scaled by 1/√(2·layers) so the residual stream keeps its size with depth, norm weights 1 and
 * biases 0. Seeded: the same graph and seed give the same bits (params in node order, one stream).
 */
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { numel } from '../../graph/types.js';
import { normalSampler } from '../runtime/rng.js';

const STD = 0.02;
const RESIDUAL_OUT = /(attn_output|ffn_down)\.weight$/;

export function trainingInit(g: Graph, seed: number): Record<string, Float32Array> {
  const randn = normalSampler(seed);
  const layers = Number((g.meta['llama'] as { nLayers?: number } | undefined)?.nLayers ?? 1);
  const out: Record<string, Float32Array> = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs['name']);
    if (Object.hasOwn(out, name)) continue;
    if (!n.type.shape.every((d) => typeof d === 'number')) throw new KilnError('K1017', `param '${name}' has a symbolic shape; training needs static sizes`, n.loc);
    const data = new Float32Array(numel(n.type.shape));
    if (n.type.shape.length >= 2) {
      const std = RESIDUAL_OUT.test(name) ? STD / Math.sqrt(2 * layers) : STD;
      for (let i = 0; i < data.length; i++) data[i] = std * randn();
    } else if (/norm\.weight$/.test(name)) data.fill(1);
    out[name] = data;
  }
  return out;
}
