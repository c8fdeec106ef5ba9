/**
 * The GGUF a case is checked with, made with kiln's own writer: seeded random weights (std 0.1,
 * norm weights 1 ± 0.1) for the case's graph, and a synthetic SentencePiece vocabulary (llama.cpp
 * will not load a `llama` GGUF without one).
 */
import { join } from 'node:path';
import { writeGguf, llamaGgufMetadata } from '../../src/formats/gguf-write.js';
import { llama, normalizeLlamaConfig } from '../../src/dsl/llama.js';
import { randomWeights } from '../../src/runtime/weights.js';
import { syntheticVocab } from '../../src/tokenizer/synthetic.js';
import type { OracleCase } from './configs.js';

export interface Fixture {
  readonly path: string;
  /** The weights written, by GGUF tensor name (before any quantisation). */
  readonly weights: Record<string, Float32Array>;
}

/** Special and byte tokens that every synthetic vocabulary starts with. */
const BASE_TOKENS = 3 + 256;

export function writeOracleGguf(c: OracleCase, dir: string): Fixture {
  const n = normalizeLlamaConfig(c.config);
  const g = llama(c.config).build();
  const weights = randomWeights(g, c.seed, 0.1);
  const pieces = Array.from({ length: n.vocabSize - BASE_TOKENS }, (_, i) => ` w${i}`);
  const vocab = syntheticVocab(pieces);
  if (vocab.tokens.length !== n.vocabSize) throw new Error(`oracle fixture: vocabulary of ${vocab.tokens.length} tokens for vocabSize ${n.vocabSize}`);
  const shapes = new Map(g.nodes.filter((x) => x.op === 'param').map((x) => [String(x.attrs['name']), x.type.shape as number[]]));
  const tensors = [...shapes].map(([name, shape]) => ({ name, dtype: shape.length === 2 ? (c.matrixDtype ?? 'f32') : 'f32', shape, data: weights[name]! }));
  const path = join(dir, `${n.name}.gguf`);
  writeGguf(path, { metadata: llamaGgufMetadata(c.config, vocab), tensors });
  return { path, weights };
}
