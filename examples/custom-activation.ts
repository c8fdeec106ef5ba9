/**
 * A custom activation written as a plain arrow: kiln reads its source and builds the same
 * elementwise ops a built-in would (here the "quick GELU" of CLIP, x·σ(1.702x), in SiLU's place
 * in the gated feed-forward). The arrow is ordinary JavaScript too: `quickGelu(1)` is a number.
 *
 *   kiln compile examples/custom-activation.ts
 */
import { llama, sigmoid } from 'kiln';

export const quickGelu = (x: number) => x * sigmoid(1.702 * x);

export default llama({
  name: 'llama-quick-gelu',
  vocabSize: 512,
  dim: 64,
  nLayers: 2,
  nHeads: 4,
  hiddenDim: 172,
  maxSeqLen: 128,
  activation: quickGelu,
});
