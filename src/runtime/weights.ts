/**
 * Weights for a graph's params. Until checkpoint loading lands, `randomWeights` makes seeded
 * random ones: normal(0, std) for matrices and biases, 1 + normal(0, std) for norm weights (so a
 * norm roughly keeps the scale of its input, as trained ones do). The same graph and seed give the
 * same bits on every run: params are filled in node order from one mulberry32 stream.
 */
import { KilnError } from '../../graph/errors.js';
import type { Graph } from '../../graph/graph.js';
import { type HostTensor, hostTensor } from '../../graph/tensor.js';
import { numel } from '../../graph/types.js';
import { normalSampler } from './rng.js';

export type Weights = Readonly<Record<string, Float32Array>>;

const NORM_WEIGHT = /norm\.weight$/;

export function randomWeights(g: Graph, seed = 0, std = 0.1): Record<string, Float32Array> {
  const randn = normalSampler(seed);
  const out: Record<string, Float32Array> = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs['name']);
    if (Object.hasOwn(out, name)) continue;
    if (!n.type.shape.every((d) => typeof d === 'number'))
      throw new KilnError('K1017', `param '${name}' has a symbolic shape; random weights need static sizes`, n.loc);
    const data = new Float32Array(numel(n.type.shape));
    const mean = NORM_WEIGHT.test(name) ? 1 : 0;
    for (let i = 0; i < data.length; i++) data[i] = mean + std * randn();
    out[name] = data;
  }
  return out;
}

/** The same weights as the interpreter's bindings (float64 holding the float32 values). */
export function weightsToHost(g: Graph, w: Weights): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const n of g.nodes) {
    if (n.op !== 'param') continue;
    const name = String(n.attrs['name']);
    const data = w[name];
    if (!data) throw new KilnError('K1017', `no weights given for param '${name}'`, n.loc);
    out[name] = hostTensor(n.type.dtype, n.type.shape as number[], data);
  }
  return out;
}
