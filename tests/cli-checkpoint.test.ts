import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LlamaConfig, llama } from '../src/dsl/llama.js';
import { PRESETS } from '../src/dsl/presets.js';
import { type Checkpoint, loadCheckpoint } from '../src/formats/checkpoint.js';
import { llamaGgufMetadata, writeGguf } from '../src/formats/gguf-write.js';
import { convertCommand } from '../src/cli/convert.js';
import { exactSyntheticVocab, presetVocab } from '../src/cli/vocab.js';
import { randomWeights } from '../src/runtime/weights.js';
import { Tokenizer } from '../src/tokenizer/index.js';
import { syntheticVocab } from '../src/tokenizer/synthetic.js';
import { captureStdout } from './helpers.js';
import { llamaVocabFromTokenizerJs } from './llama-vocab.js';
import { disposeLlamaCpp, llamaCppGreedy } from './oracle/llama-cpp.js';

/**
 * The CLI on checkpoint files: `kiln run`/`info`/`convert` on GGUFs the test writes, with
 * llama.cpp (node-llama-cpp) as the oracle for greedy generation. Spawns cost 1–3 s each, so
 * each spawn is checked for several things.
 */

const ROOT = resolve(import.meta.dirname, '..');
const KILN = join(ROOT, 'bin', 'kiln.js');
const PROMPT = 'Once upon a time';
let tmp: string;

const ENV = { ...process.env, KILN_DEBUG: '' };

function kiln(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [KILN, ...args], { cwd: tmp, encoding: 'utf8', env: ENV });
}

/** Several kiln commands in one shell, in the fixture folder. */
function sh(script: string): SpawnSyncReturns<string> {
  return spawnSync('bash', ['-c', script], { cwd: tmp, encoding: 'utf8', env: ENV });
}

/** A small model with the real LLaMA vocabulary, so text prompts encode as LLaMA's do. */
const TEXT_CONFIG: LlamaConfig = { name: 'cli-text', vocabSize: 32000, dim: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 64, normEps: 1e-5 };
/** Mixed dtypes (f32 norms, f16 and bf16 matrices), an untied head and a synthetic vocabulary. */
const MIXED_CONFIG: LlamaConfig = { name: 'cli-mixed', vocabSize: 300, dim: 32, nLayers: 2, nHeads: 4, nKvHeads: 1, hiddenDim: 48, maxSeqLen: 32, normEps: 1e-6, ropeBase: 500000 };

function writeFixture(config: LlamaConfig, vocab: ReturnType<typeof syntheticVocab>, path: string, dtypeOf: (name: string, rank: number) => 'f32' | 'f16' | 'bf16'): void {
  const g = llama(config).build();
  const w = randomWeights(g, 11, 0.1);
  const tensors = g.nodes
    .filter((n) => n.op === 'param')
    .map((n) => {
      const name = String(n.attrs['name']);
      const shape = n.type.shape as number[];
      return { name, dtype: dtypeOf(name, shape.length), shape, data: w[name]! };
    });
  writeGguf(path, { metadata: llamaGgufMetadata(config, vocab), tensors });
}

let textGguf: string;
let mixedGguf: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kiln-cli-ckpt-'));
  textGguf = join(tmp, 'text.gguf');
  mixedGguf = join(tmp, 'mixed.gguf');
  writeFixture(TEXT_CONFIG, llamaVocabFromTokenizerJs(), textGguf, () => 'f32');
  const pieces = Array.from({ length: 300 - 259 }, (_, i) => ` w${i}`);
  writeFixture(MIXED_CONFIG, syntheticVocab(pieces), mixedGguf, (name, rank) => (rank === 1 ? 'f32' : name.includes('ffn') ? 'bf16' : 'f16'));
});
afterAll(async () => {
  await disposeLlamaCpp();
  rmSync(tmp, { recursive: true, force: true });
});

function sameTensors(a: Checkpoint, b: Checkpoint): void {
  expect([...b.tensors.keys()].sort()).toEqual([...a.tensors.keys()].sort());
  for (const [name, t] of a.tensors) {
    const u = b.tensors.get(name)!;
    expect({ name, dtype: u.dtype, shape: u.shape }).toEqual({ name, dtype: t.dtype, shape: t.shape });
    expect(Buffer.from(u.bytes).equals(Buffer.from(t.bytes)), name).toBe(true);
  }
}

describe('kiln run on a GGUF', () => {
  it('a --tokenizer of another vocabulary is refused before anything runs (run, convert); --weights-seed on a checkpoint is noted', () => {
    // a tokenizer.json of 3 + 256 byte tokens + 5 pieces: 264 tokens against the model's 32000
    const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
    for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
    ['▁', 'a', 'b', '▁a', '▁b'].forEach((p, i) => (vocab[p] = 259 + i));
    const special = [0, 1, 2].map((id) => ({ id, content: Object.keys(vocab)[id], special: true }));
    const small = join(tmp, 'small-tokenizer.json');
    writeFileSync(small, JSON.stringify({ model: { type: 'BPE', vocab, merges: ['▁ a', '▁ b'], byte_fallback: true, unk_token: '<unk>' }, added_tokens: special, normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] } }));
    const want = `error K1016: --tokenizer: ${small} has 264 tokens, but the model's vocabulary has 32000: they belong to different models\n`;
    const run = kiln(['run', textGguf, '--tokenizer', small, '--prompt', 'a b', '--max-tokens', '2']);
    expect([run.status, run.stdout, run.stderr]).toEqual([2, '', want]);
    const conv = kiln(['convert', textGguf, join(tmp, 'mismatch.gguf'), '--tokenizer', small]);
    expect([conv.status, conv.stderr]).toEqual([2, want]);
    const seeded = kiln(['run', textGguf, '--tokens', '1,2', '--max-tokens', '1', '--weights-seed', '3']);
    expect(seeded.status).toBe(0);
    expect(seeded.stderr).toContain(`kiln: --weights-seed applies to models without a checkpoint; ${textGguf} brings its own weights, so it is ignored\n`);
  });

  it('--temperature 0 gives the tokens llama.cpp gives; text streams and decodes to the same ids', async () => {
    const json = kiln(['run', textGguf, '--prompt', PROMPT, '--max-tokens', '32', '--temperature', '0', '--json']);
    expect(json.stderr).toBe('');
    expect(json.status).toBe(0);
    const j = JSON.parse(json.stdout) as { tokens: number[]; prompt: number[]; text: string; stopped: string };
    // BOS, then the dummy-prefix space merged in, as llama2.c and llama.cpp encode it
    expect(j.prompt).toEqual([1, 9038, 2501, 263, 931]);
    const expected = await llamaCppGreedy(textGguf, j.prompt, 32);
    if (j.stopped === 'eos') {
      // generation ends after EOS; llama.cpp (fed ids) goes on, so compare up to it
      expect(j.tokens.at(-1)).toBe(2);
      expect(j.tokens).toEqual(expected.slice(0, j.tokens.length));
    } else {
      expect(j.stopped).toBe('max-tokens');
      expect(j.tokens).toEqual(expected);
    }

    const text = kiln(['run', textGguf, '--prompt', PROMPT, '--max-tokens', '32']);
    expect(text.status).toBe(0);
    expect(text.stderr).toMatch(new RegExp(`^kiln: ${j.tokens.length} tokens on js`));
    const tok = Tokenizer.fromData(llamaVocabFromTokenizerJs());
    const continuation = tok.decode([...j.prompt, ...j.tokens]).slice(PROMPT.length);
    expect(continuation.length).toBeGreaterThan(0);
    expect(j.text).toBe(continuation);
    expect(text.stdout).toBe(`${PROMPT}${continuation}\n`);
  });
});

describe('kiln info on GGUFs', () => {
  it('shows the dtype mix and config; a truncated file is one line naming it, exit 1', () => {
    const bytes = readFileSync(mixedGguf);
    writeFileSync(join(tmp, 'cut.gguf'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const r = sh(`node "${KILN}" info mixed.gguf; echo "rc=$?"; node "${KILN}" info cut.gguf; echo "rc=$?"`);
    const [info, cut] = r.stdout.split(/rc=\d+\n/);
    expect(r.stdout.match(/rc=\d+/g)).toEqual(['rc=0', 'rc=1']);
    expect(info).toMatch(/^checkpoint mixed\.gguf \(gguf\)\n/);
    expect(info).toMatch(/\n {2}tensors +21\n/); // 2 layers · 9, token_embd, output_norm, output (untied)
    expect(info).toMatch(/\n {4}f16 +\d+ tensors, [\d,]+ bytes/);
    expect(info).toMatch(/\n {4}bf16 +6 tensors, [\d,]+ bytes/);
    expect(info).toMatch(/\n {4}f32 +\d+ tensors, [\d,]+ bytes/);
    expect(info).toMatch(/tokenizer +300 tokens \(BOS 1, EOS 2\)/);
    expect(info).toMatch(/file size +[\d,]+ bytes/);
    expect(info).toMatch(/nKvHeads +1\n/);
    expect(info).toMatch(/ropeBase +500,000\n/);
    expect(info).toContain('parameters');
    expect(cut).toBe('');
    expect(r.stderr.split('\n')).toHaveLength(2); // one line and the final newline
    expect(r.stderr).toMatch(/^error K1021: cut\.gguf: .*truncated/);
  });
});

describe('kiln convert', () => {
  it('round-trips GGUF ↔ safetensors with identical tensors, and says what it wrote', () => {
    const r = sh(`node "${KILN}" convert mixed.gguf st && node "${KILN}" convert st back.gguf`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [toSt, toGguf] = r.stdout.split(/\n(?=kiln: wrote)/);
    expect(toSt).toMatch(/^kiln: wrote st \(safetensors\) from mixed\.gguf \(gguf\): 21 tensors, [\d,]+ bytes/);
    expect(toSt).toContain('RoPE: q and k rows permuted per head, interleaved pairs (GGUF/Meta) → rotate-half (Hugging Face)');
    expect(toGguf).toMatch(/^kiln: wrote back\.gguf \(gguf\) from st \(safetensors\): 21 tensors/);
    expect(toGguf).toContain('RoPE: q and k rows permuted per head, rotate-half (Hugging Face) → interleaved pairs (GGUF)');
    expect(toGguf).toMatch(/dtypes: f16: \d+ tensors, [\d,]+ bytes \([^)]*\); bf16: 6 tensors/);
    // the tokenizer travels as tokenizer.json and back into the GGUF: the same prompt, the same ids
    expect(toSt).toContain('tokenizer: 300 tokens, as tokenizer.json');
    expect(toGguf).toContain('tokenizer: 300 tokens');
    const ids = (m: string) => {
      const j = JSON.parse(kiln(['run', m, '--prompt', 'w1 w2 w3', '--max-tokens', '4', '--json']).stdout) as { prompt: number[]; tokens: number[]; text: string };
      return { prompt: j.prompt, tokens: j.tokens, text: j.text };
    };
    const want = ids('mixed.gguf');
    expect(want.prompt.length).toBeGreaterThan(1);
    expect(ids('st')).toEqual(want);
    expect(ids('back.gguf')).toEqual(want);
  });

  it('the round trip and the intermediate safetensors hold the same tensors', async () => {
    const a = await loadCheckpoint(mixedGguf);
    const back = await loadCheckpoint(join(tmp, 'back.gguf'));
    sameTensors(a, back);
    expect(back.config).toMatchObject({ dim: 32, nKvHeads: 1, ropeBase: 500000, vocabSize: 300 });
    // safetensors keeps Hugging Face's rotate-half q/k rows; every other tensor is the same bytes
    const st = await loadCheckpoint(join(tmp, 'st'));
    expect(st.config.ropeLayout).toBe('half');
    const qk = /attn_[qk]\.weight$/;
    for (const [name, t] of a.tensors) {
      const u = st.tensors.get(name)!;
      expect(u.dtype).toBe(t.dtype);
      expect(Buffer.from(u.bytes).equals(Buffer.from(t.bytes)), name).toBe(qk.test(name) ? false : true);
    }
  });

  it('preset:NAME writes seeded random weights (std 0.1) and a vocabulary of exactly vocabSize tokens', async () => {
    const out = join(tmp, 'tiny.gguf');
    const printed = await captureStdout(() => convertCommand('preset:tiny', out, { seed: 3 }));
    expect(printed).toMatch(/^kiln: wrote .*tiny\.gguf \(gguf\) from preset:tiny \(random weights, seed 3, std 0\.1\): 21 tensors/);
    const ck = await loadCheckpoint(out);
    expect(ck.tokenizer!.tokens).toHaveLength(64);
    const w = randomWeights(llama(PRESETS['tiny']!).build(), 3, 0.1);
    for (const [name, t] of ck.tensors) expect(t.toFloat32(), name).toEqual(w[name]);
    // the tokenizer works on text even without room for byte tokens
    const tok = Tokenizer.fromData(ck.tokenizer!);
    expect(tok.decode(tok.encode('the cat'))).toBe('the cat');
  });

  it('vocabularies: LLaMA for 32000 tokens, synthetic of exact size otherwise', async () => {
    expect(await presetVocab(32000)).toEqual(llamaVocabFromTokenizerJs());
    for (const n of [4, 64, 258, 259, 300, 1000]) expect(exactSyntheticVocab(n).tokens).toHaveLength(n);
    expect((await presetVocab(32000, 'synthetic')).tokens).toHaveLength(32000);
    await expect(presetVocab(64, 'llama')).rejects.toThrow(/--vocab llama: the LLaMA vocabulary has 32000 tokens but the model has 64/);
  });
});
