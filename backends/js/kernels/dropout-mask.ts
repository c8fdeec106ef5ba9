/**
 * dropout_mask: element i (row-major) is 1/(1 − p) where hash(seed, step, stream, i) keeps it,
 * else 0; key = [seed, step]. The hash is graph/random.ts's, written out here (the module runs on
 * its own): four rounds of murmur3's fmix32 in uint32 arithmetic (Math.imul, >>> 0). Kept means
 * (h >>> 8) ≥ ⌈p·2²⁴⌉, the integer form of u ≥ p; the threshold, the scale and the stream's
 * product are folded at compile time.
 */
import { dropoutThreshold } from '../../../graph/random.js';
import { jsNum } from '../codegen.js';
import type { Kernel } from './kernel.js';

const DROPOUT_MASK = `/** murmur3's 32-bit finaliser. */
function fmix32(h) {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
/** out[i] = scale where the top 24 bits of hash(key[0], key[1], stream, i) are ≥ threshold, else 0; sm = stream·0x632be5ab. */
function dropoutMask(key, out, n, threshold, sm, scale) {
  const seed = key[0], step = key[1];
  for (let i = 0; i < n; i++) {
    let h = fmix32(i ^ 0x9e3779b9);
    h = fmix32(h ^ sm);
    h = fmix32(h ^ step);
    h = fmix32(h ^ seed);
    out[i] = h >>> 8 >= threshold ? scale : 0;
  }
}`;

export const dropoutMaskKernel: Kernel = (c) => {
  const p = c.node.attrs['p'] as number;
  const sm = Math.imul(c.node.attrs['stream'] as number, 0x632be5ab);
  return `${c.helper('dropoutMask', DROPOUT_MASK)}(${c.ins[0]}, ${c.out}, ${c.numel(c.node.type.shape)}, ${dropoutThreshold(p)}, ${jsNum(sm)}, ${jsNum(1 / (1 - p))});`;
};
