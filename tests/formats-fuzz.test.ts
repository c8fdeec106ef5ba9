/**
 * Bad files: truncated and byte-corrupted GGUF, safetensors and llama2.c checkpoints must either
 * load as a model whose tensors all agree with its config, or fail with a one-line K1021
 * KilnError naming the file — never another exception, never a hang.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import { normalizeLlamaConfig } from '../src/dsl/llama.js';
import { loadCheckpoint } from '../src/formats/checkpoint.js';
import { expectedShapes } from '../src/formats/consistency.js';
import { byteLength } from '../src/formats/dtypes.js';
import { llamaGgufMetadata, writeGguf } from '../src/formats/gguf-write.js';
import { writeSafetensors } from '../src/formats/safetensors-write.js';
import { seededTensors, writeLlama2c } from './formats-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CFG = { vocabSize: 8, dim: 32, nLayers: 1, nHeads: 2, nKvHeads: 1, hiddenDim: 32, maxSeqLen: 4 };
const tensors = seededTensors(CFG, 2);
const TOK = { model: 'llama' as const, tokens: ['<unk>', '<s>', '</s>', 'a', 'b', 'c', 'd', 'e'], scores: [0, 0, 0, -1, -2, -3, -4, -5], types: [2, 3, 3, 1, 1, 1, 1, 1], bos: 1, eos: 2, unk: 0, addBos: true, addSpacePrefix: true };

const ggufPath = join(dir, 'good.gguf');
writeGguf(ggufPath, { metadata: llamaGgufMetadata(CFG, TOK), tensors: tensors.map((t) => ({ ...t, dtype: t.shape.length === 1 ? ('f32' as const) : ('q8_0' as const) })) });
const stDir = join(dir, 'good-st');
writeSafetensors(stDir, tensors.map((t) => ({ ...t, dtype: 'f16' as const })), CFG);
const l2cPath = join(dir, 'good.bin');
writeLlama2c(l2cPath, CFG, tensors, false);

const mutation = (size: number) =>
  fc.oneof(
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: size - 1 }) }),
    fc.record({ kind: fc.constant('corrupt' as const), edits: fc.array(fc.tuple(fc.nat({ max: size - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }) }),
    // Corruptions concentrated in the header, where counts, lengths and types live.
    fc.record({ kind: fc.constant('corrupt' as const), edits: fc.array(fc.tuple(fc.nat({ max: Math.min(size, 600) - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }) }),
  );

type Mutation = { kind: 'truncate'; at: number } | { kind: 'corrupt'; edits: [number, number][] };

function mutate(bytes: Buffer, m: Mutation): Buffer {
  if (m.kind === 'truncate') return bytes.subarray(0, m.at);
  const b = Buffer.from(bytes);
  for (const [i, v] of m.edits) b[i] = v;
  return b;
}

async function check(loadPath: string, file: string): Promise<void> {
  const t0 = performance.now();
  try {
    const ck = await loadCheckpoint(loadPath);
    const c = normalizeLlamaConfig(ck.config, undefined);
    for (const [name, { shape }] of expectedShapes(c)) {
      const t = ck.tensors.get(name);
      expect(t, name).toBeDefined();
      expect(t!.shape).toEqual(shape);
      expect(t!.bytes.length).toBe(byteLength(t!.dtype, shape.reduce((a, d) => a * d, 1)));
    }
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    expect(e.code).toBe('K1021');
    expect(e.message).not.toMatch(/[\r\n]/);
    expect(e.message).toContain(file);
  }
  expect(performance.now() - t0).toBeLessThan(2000);
}

const cases: [string, string, string][] = [
  ['GGUF (q8_0 + f32, with a tokenizer)', ggufPath, '.gguf'],
  ['safetensors (f16)', join(stDir, 'model.safetensors'), '.safetensors'],
  ['llama2.c (separate classifier)', l2cPath, '.bin'],
];

describe.each(cases)('%s', (_, goodPath, ext) => {
  const good = readFileSync(goodPath);
  it('loads unharmed', async () => {
    await expect(loadCheckpoint(goodPath)).resolves.toBeDefined();
  });
  it('fails cleanly or loads a consistent model, whatever the damage', async () => {
    const work = join(dir, `fuzz${ext.replace('.', '-')}`);
    mkdirSync(work, { recursive: true });
    if (ext === '.safetensors') copyFileSync(join(stDir, 'config.json'), join(work, 'config.json'));
    const file = join(work, `model${ext}`);
    await fc.assert(
      fc.asyncProperty(mutation(good.length), async (m) => {
        writeFileSync(file, mutate(good, m as Mutation));
        await check(file, file);
      }),
      { numRuns: 200, seed: 4242 },
    );
  }, 60_000);
});
