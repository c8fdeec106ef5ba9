import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { getLlama } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../graph/errors.js';
import type { TokenizerData } from '../src/formats/checkpoint.js';
import { checkConfig, expectedShapes } from '../src/formats/consistency.js';
import { llamaGgufMetadata, writeGguf } from '../src/formats/gguf-write.js';
import { byteTokenName, TokenType } from '../src/tokenizer/data.js';
import { parseHfTokenizerJson, tokenizerFromHfJson } from '../src/tokenizer/hf-json.js';
import { hfTokenizerJson } from '../src/tokenizer/hf-json-write.js';
import { encodeLlama2cTokenizer, parseLlama2cTokenizer, tokenizerFromLlama2cBin } from '../src/tokenizer/llama2c-bin.js';
import { syntheticVocab, trainSyntheticVocab } from '../src/tokenizer/synthetic.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { llamaVocabFromTokenizerJs, tokenizerJsEncode } from './llama-vocab.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-tokenizer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Byte token id in a synthetic (LLaMA-layout) vocabulary. */
const byteId = (b: number): number => 3 + b;

const CORPUS = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'One day, she saw a big red ball. "Can I play with the ball?" she asked her mom.',
  'The cat sat on the mat.\nThe dog ran to the tree and back again, happy and tired.',
].join('\n');
const storyVocab = trainSyntheticVocab(CORPUS, 120);
const story = Tokenizer.fromData(storyVocab);

describe('encode on a hand-made vocabulary', () => {
  // Ids: 259 '▁', 260 'a', 261 'b', 262 'c', then the merged pieces.
  const abc = (extra: (readonly [string, number])[], opts = { addSpacePrefix: false }): Tokenizer =>
    Tokenizer.fromData(syntheticVocab([['▁', -100], ['a', -100], ['b', -100], ['c', -100], ...extra], opts));

  it('merges the best-scoring pair first', () => {
    const t = abc([['ab', -2], ['bc', -1]]); // 263 ab, 264 bc
    expect(t.encode('abc', { bos: false })).toEqual([260, 264]);
    const u = abc([['ab', -1], ['bc', -2]]);
    expect(u.encode('abc', { bos: false })).toEqual([263, 262]);
  });

  it('breaks score ties to the left', () => {
    const t = abc([['aa', -1]]); // 263
    expect(t.encode('aaa', { bos: false })).toEqual([263, 260]);
    expect(t.encode('aaaa', { bos: false })).toEqual([263, 263]);
  });

  it('keeps merging merged pieces while the result is in the vocabulary', () => {
    const t = abc([['ab', -1], ['abc', -3], ['▁abc', -2]], { addSpacePrefix: true }); // 263, 264, 265
    expect(t.encode('abc', { bos: false })).toEqual([265]);
    expect(t.encode('abc abc', { bos: false })).toEqual([265, 265]);
    expect(t.encode('abc', { bos: true })).toEqual([1, 265]);
  });

  it('adds the dummy prefix only when asked', () => {
    const t = abc([], { addSpacePrefix: true });
    expect(t.encode('a b', { bos: false })).toEqual([259, 260, 259, 261]);
    const u = abc([], { addSpacePrefix: false });
    expect(u.encode('a b', { bos: false })).toEqual([260, 259, 261]);
  });

  it('falls back to UTF-8 bytes for characters not in the vocabulary', () => {
    const t = abc([]);
    expect(t.encode('aé🦙', { bos: false })).toEqual([260, byteId(0xc3), byteId(0xa9), byteId(0xf0), byteId(0x9f), byteId(0xa6), byteId(0x99)]);
    expect(t.encode('\n', { bos: false })).toEqual([byteId(0x0a)]);
  });

  it('uses <unk> when even the byte token is missing', () => {
    const d = syntheticVocab(['a'], { addSpacePrefix: false });
    const noBytes: TokenizerData = { ...d, tokens: d.tokens.map((p) => (p === byteTokenName(0xc3) ? 'xC3' : p)) };
    expect(Tokenizer.fromData(noBytes).encode('\u00e9a', { bos: false })).toEqual([0, byteId(0xa9), 259]);
  });

  it('encodes the empty string as nothing, or BOS alone', () => {
    expect(story.encode('', { bos: false })).toEqual([]);
    expect(story.encode('')).toEqual([1]);
  });

  it('takes user-defined pieces whole and prefixes the text after them', () => {
    const d = syntheticVocab(['▁', 'a', 'b'], { addSpacePrefix: true });
    const withUser: TokenizerData = {
      ...d,
      tokens: [...d.tokens, '<tool>'],
      scores: [...d.scores, 0],
      types: [...d.types, TokenType.userDefined],
    };
    const t = Tokenizer.fromData(withUser);
    const tool = d.tokens.length;
    expect(t.encode('a<tool>b', { bos: false })).toEqual([259, 260, tool, 259, 261]);
    expect(t.decode(t.encode('a<tool>b'))).toBe('a<tool> b');
  });
});

describe('decode', () => {
  it('turns ▁ into spaces, drops control tokens and strips the dummy-prefix space', () => {
    const ids = story.encode('Once upon a time');
    expect(ids[0]).toBe(1);
    expect(story.decode(ids)).toBe('Once upon a time');
    expect(story.decode(ids.slice(1))).toBe('Once upon a time');
    expect(story.decode([...ids, 2])).toBe('Once upon a time');
  });

  it('keeps a leading space that is real text in a continuation stream', () => {
    const ids = story.encode('upon a time', { bos: false });
    const d = story.streamDecoder();
    expect(ids.map((id) => d.push(id)).join('') + d.flush()).toBe(' upon a time');
    const atStart = story.streamDecoder({ atStart: true });
    expect(ids.map((id) => atStart.push(id)).join('') + atStart.flush()).toBe('upon a time');
  });

  it('strips the space again after a BOS in the middle of a stream', () => {
    const d = story.streamDecoder();
    const ids = [...story.encode('The cat'), ...story.encode('The dog')];
    expect(ids.map((id) => d.push(id)).join('')).toBe('The catThe dog');
  });

  it('writes nothing for a lone <unk>, and the bytes of byte tokens', () => {
    expect(story.decode([0])).toBe('');
    expect(story.decode([byteId(0x41), byteId(0x0a)])).toBe('A\n');
  });

  it('rejects ids outside the vocabulary with K1017', () => {
    expect(() => story.decode([story.vocabSize])).toThrow(KilnError);
    try {
      story.decode([-1]);
    } catch (e) {
      expect((e as KilnError).code).toBe('K1017');
      expect((e as KilnError).message).toBe(`token id -1 is outside the vocabulary (${story.vocabSize} tokens)`);
    }
  });
});

describe('streamed decoding', () => {
  it('holds the bytes of an emoji until its last byte arrives', () => {
    const ids = story.encode('🦙.', { bos: false }); // '▁', then 4 byte tokens, then '.'
    const bytes = ids.filter((id) => story.typeOf(id) === TokenType.byte);
    expect(bytes).toHaveLength(4);
    const d = story.streamDecoder({ atStart: true });
    const outs = ids.map((id) => d.push(id));
    expect(outs.join('') + d.flush()).toBe('🦙.');
    const last = ids.indexOf(bytes[3]!);
    for (let i = 0; i < last; i++) expect(outs[i]).not.toMatch(/\uFFFD|\uD83E/);
    expect(outs[last]).toBe('🦙');
  });

  it('splits CJK byte sequences only at character boundaries', () => {
    const text = '日本語のテキスト';
    const ids = story.encode(text, { bos: false });
    const d = story.streamDecoder({ atStart: true });
    const outs = ids.map((id) => d.push(id));
    expect(outs.join('') + d.flush()).toBe(text);
    // Every chunk is whole characters: 3 bytes of UTF-8 each, so never a replacement char.
    for (const o of outs) expect(o).not.toContain('\uFFFD');
    expect(outs.filter((o) => o.length > 0).every((o) => [...o].every((c) => text.includes(c)))).toBe(true);
  });

  it('flush writes an unfinished character as U+FFFD, then starts afresh', () => {
    const d = story.streamDecoder();
    expect(d.push(byteId(0xf0))).toBe('');
    expect(d.push(byteId(0x9f))).toBe('');
    expect(d.flush()).toBe('\uFFFD');
    expect(d.push(byteId(0x41))).toBe('A');
  });

  it('gives the same text as decode, token by token', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const ids = story.encode(s);
        const d = story.streamDecoder({ atStart: true });
        const streamed = ids.map((id) => d.push(id)).join('') + d.flush();
        expect(streamed).toBe(story.decode(ids));
      }),
      { numRuns: 200 },
    );
  });
});

describe('round trip: decode(encode(s)) === s', () => {
  // U+2581 is SentencePiece's space: in the input it reads back as ' ', as in SentencePiece.
  const noMark = (s: string): boolean => !s.includes('\u2581');
  const pieces = fc.constantFrom('the ', 'cat', ' ', '  ', '\n', '\t', '🦙', '日本', 'é', 'ß', '\r\n', 'Once', '.', '"');
  const texts = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.string({ unit: 'grapheme', maxLength: 30 }),
    fc.array(pieces, { maxLength: 20 }).map((a) => a.join('')),
  ).filter(noMark);

  for (const [name, opts] of [
    ['with BOS and the dummy prefix', {}],
    ['without the dummy prefix', { addSpacePrefix: false }],
  ] as const) {
    it(name, () => {
      const t = Tokenizer.fromData(trainSyntheticVocab(CORPUS, 80, opts));
      fc.assert(
        fc.property(texts, fc.boolean(), (s, bos) => {
          expect(t.decode(t.encode(s, { bos }))).toBe(s);
        }),
        { numRuns: 400 },
      );
    });
  }

  it('reads U+2581 in the input as a space', () => {
    expect(story.decode(story.encode('a\u2581b'))).toBe('a b');
  });
});

describe('the LLaMA-2 vocabulary, against llama-tokenizer-js', () => {
  const llama = Tokenizer.fromData(llamaVocabFromTokenizerJs());

  it('encodes "Once upon a time" with BOS as llama2.c does', () => {
    expect(llama.encode('Once upon a time')).toEqual([1, 9038, 2501, 263, 931]);
    expect(llama.decode([1, 9038, 2501, 263, 931])).toBe('Once upon a time');
  });

  it('agrees with llama-tokenizer-js on 300 strings', () => {
    const words = fc.constantFrom(
      'the', 'The', ' ', '  ', '   ', '\n', '\n\n', '\t', 'quick', 'brown', 'fox', 'jumps', 'über', 'naïve', 'café',
      'Однажды', 'жили', '日本語', '的', '中文', 'テキスト', '🦙', '👍🏽', '😀', '—', '...', '!', '?', ',', "'s", '"',
      '(', ')', '123', '4567', '3.14', 'https://example.com/a?b=c', 'function', 'return', '{', '}', ';', 'x_y',
      'unbelievable', 'antidisestablishmentarianism', 'llama', 'LLaMA', 'GGUF', '<s>', '</s>', '\u00a0', 'ǅ', '∑',
    );
    const texts = fc.sample(
      fc.oneof(
        { arbitrary: fc.array(words, { minLength: 1, maxLength: 16 }).map((a) => a.join('')), weight: 3 },
        { arbitrary: fc.array(words, { minLength: 1, maxLength: 12 }).map((a) => a.join(' ')), weight: 3 },
        { arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }), weight: 1 },
      ).filter((s) => !s.includes('\u2581')),
      { numRuns: 300, seed: 20261130 },
    );
    const mismatches = texts
      .map((s) => ({ s, kiln: llama.encode(s), js: tokenizerJsEncode(s, true) }))
      .filter((r) => JSON.stringify(r.kiln) !== JSON.stringify(r.js));
    expect(mismatches.slice(0, 3)).toEqual([]);
    for (const s of texts) expect(llama.decode(llama.encode(s))).toBe(s);
  });

  it('encodes 10 kB of text in well under a second', () => {
    const text = (CORPUS + ' 🦙 日本語\n').repeat(40).slice(0, 10_000);
    llama.encode(text.slice(0, 500)); // warm up the JIT
    const t0 = performance.now();
    const ids = llama.encode(text);
    const ms = performance.now() - t0;
    expect(ids.length).toBeGreaterThan(2000);
    expect(ms).toBeLessThan(500);
    expect(llama.decode(ids)).toBe(text);
  });
});

describe("llama2.c's tokenizer.bin", () => {
  const llamaData = llamaVocabFromTokenizerJs();

  it('round-trips the LLaMA vocabulary through the file format', () => {
    const path = join(dir, 'tokenizer.bin');
    writeFileSync(path, encodeLlama2cTokenizer(llamaData));
    const t = tokenizerFromLlama2cBin(path, 32000);
    expect(t.data.tokens).toEqual(llamaData.tokens);
    expect(t.data.types).toEqual(llamaData.types);
    expect(t.data.scores).toEqual(llamaData.scores.map(Math.fround));
    expect(t.encode('Once upon a time')).toEqual([1, 9038, 2501, 263, 931]);
  });

  it("stores spaces and BOS/EOS as llama2.c's exporter does", () => {
    const bytes = encodeLlama2cTokenizer(storyVocab);
    const text = new TextDecoder().decode(bytes);
    expect(text).toContain('\n<s>\n');
    expect(text).toContain('\n</s>\n');
    expect(text).not.toContain('\u2581');
    expect(parseLlama2cTokenizer(bytes, storyVocab.tokens.length).tokens).toEqual(storyVocab.tokens);
  });

  it('reports a truncated file or a wrong vocabulary size in one line naming the file', () => {
    const bytes = encodeLlama2cTokenizer(storyVocab);
    const n = storyVocab.tokens.length;
    for (const [b, size] of [
      [bytes.subarray(0, 2), n],
      [bytes.subarray(0, bytes.length - 1), n],
      [bytes, n + 1],
    ] as const) {
      let err: unknown;
      try {
        parseLlama2cTokenizer(b, size, 'stories/tokenizer.bin');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe('K1021');
      expect((err as KilnError).message).toMatch(/^stories\/tokenizer\.bin: [^\n]*truncated/);
    }
  });

  it('fuzz: corrupted files give a KilnError or a vocabulary, never a crash', () => {
    const good = encodeLlama2cTokenizer(storyVocab);
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(good.length), (at, byte, cut) => {
        const b = good.slice(0, cut);
        if (at < b.length) b[at] = byte;
        try {
          const d = parseLlama2cTokenizer(b, storyVocab.tokens.length);
          expect(d.tokens).toHaveLength(storyVocab.tokens.length);
        } catch (e) {
          expect(e).toBeInstanceOf(KilnError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reports a missing file with K1013', () => {
    expect(() => tokenizerFromLlama2cBin(join(dir, 'nope.bin'), 32000)).toThrow(/nope\.bin: cannot read/);
  });
});

describe('Hugging Face tokenizer.json', () => {
  const llamaData = llamaVocabFromTokenizerJs();

  /**
   * kiln's own tokenizer.json of `d` (LLaMA-2 style: a Prepend normalizer, "a b" merges), or the
   * same vocabulary in the other style readers meet: a Metaspace pre-tokenizer and [a, b] merges.
   */
  function hfJson(d: TokenizerData, style: 'llama2' | 'metaspace'): object {
    const j = JSON.parse(hfTokenizerJson(d)) as { model: { merges: string[] } } & Record<string, unknown>;
    if (style === 'llama2') return j;
    return {
      ...j,
      normalizer: null,
      pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
      model: { ...j.model, merges: j.model.merges.map((m) => m.split(' ')) },
    };
  }

  it('loads a LLaMA-2 tokenizer.json and encodes as llama-tokenizer-js', () => {
    const path = join(dir, 'tokenizer.json');
    writeFileSync(path, JSON.stringify(hfJson(llamaData, 'llama2')));
    const t = tokenizerFromHfJson(path);
    expect(t.vocabSize).toBe(32000);
    expect(t.addBos).toBe(true);
    expect(t.addSpacePrefix).toBe(true);
    expect([t.bos, t.eos, t.unk]).toEqual([1, 2, 0]);
    expect(t.typeOf(3 + 0x0a)).toBe(TokenType.byte);
    for (const s of ['Once upon a time', 'Hello,  world!\n日本語 🦙', '   leading spaces', 'naïve café — über'])
      expect(t.encode(s)).toEqual(tokenizerJsEncode(s, true));
  });

  it('kiln writes a tokenizer.json that reads back as the same tokenizer (tokens, types, specials, encodings)', () => {
    for (const d of [llamaData, storyVocab, { ...storyVocab, addBos: false, addSpacePrefix: false }]) {
      const back = parseHfTokenizerJson(JSON.parse(hfTokenizerJson(d)));
      expect(back.tokens).toEqual(d.tokens);
      expect(back.types).toEqual(d.types);
      expect([back.bos, back.eos, back.unk, back.addBos, back.addSpacePrefix]).toEqual([d.bos, d.eos, d.unk, d.addBos, d.addSpacePrefix]);
      const [a, b] = [Tokenizer.fromData(d), Tokenizer.fromData(back)];
      for (const s of [...CORPUS.split('\n'), 'Once upon a time', 'Hello,  world!\n日本語 🦙', '   leading spaces', 'naïve café — über'])
        expect(b.encode(s)).toEqual(a.encode(s));
    }
  });

  it('reads the Metaspace pre-tokenizer and pair-form merges', () => {
    const d = parseHfTokenizerJson(hfJson(storyVocab, 'metaspace'));
    expect(d.addSpacePrefix).toBe(true);
    const t = Tokenizer.fromData(d);
    for (const s of CORPUS.split('\n')) expect(t.encode(s)).toEqual(story.encode(s));
  });

  it('reports what is wrong, naming the file', () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{"model": ');
    expect(() => tokenizerFromHfJson(path)).toThrow(/broken\.json: is not JSON/);
    expect(() => parseHfTokenizerJson({ model: { type: 'Unigram', vocab: [] } }, 'x/tokenizer.json')).toThrow(
      'x/tokenizer.json: model.type is "Unigram", expected "BPE" (LLaMA\'s SentencePiece BPE)',
    );
    expect(() => parseHfTokenizerJson({ model: { type: 'BPE', vocab: { a: 0, '<s>': 1, '</s>': 2 }, merges: ['a b'] } })).toThrow(
      /merge 0 makes "ab", which is not in the vocabulary/,
    );
  });
});

describe('Tokenizer.fromData checks its input', () => {
  it('rejects mismatched lengths and special ids outside the vocabulary', () => {
    const d = syntheticVocab(['a']);
    expect(() => Tokenizer.fromData({ ...d, scores: d.scores.slice(1) })).toThrow(/tokens but .* scores/);
    expect(() => Tokenizer.fromData({ ...d, bos: d.tokens.length })).toThrow(/bos id/);
  });

  it('guesses token types when a file has none', () => {
    const t = Tokenizer.fromData({ ...syntheticVocab(['▁a']), types: [] });
    expect([t.typeOf(0), t.typeOf(1), t.typeOf(3 + 0x41), t.typeOf(259)]).toEqual([
      TokenType.unknown, TokenType.control, TokenType.byte, TokenType.normal,
    ]);
    expect(t.decode(t.encode('a\n'))).toBe('a\n');
  });
});

describe('llama.cpp tokenizes GGUFs with these vocabularies as kiln does', () => {
  /** A GGUF with tiny constant weights: only its tokenizer metadata matters here. */
  function writeVocabGguf(path: string, tok: TokenizerData): void {
    const config = { vocabSize: tok.tokens.length, dim: 8, hiddenDim: 16, nLayers: 1, nHeads: 2, maxSeqLen: 64 };
    const tensors = [...expectedShapes(checkConfig(path, config))].map(([name, { shape }]) => ({
      name, dtype: 'f32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01),
    }));
    writeGguf(path, { metadata: llamaGgufMetadata(config, tok), tensors });
  }
  const words = fc.constantFrom(
    'the', 'The', ' ', '  ', '   ', '\n', '\n\n', '\t', 'quick', 'über', 'café', 'Однажды', '日本語', 'テキスト', '🦙', '👍🏽',
    '—', '...', '!', "'s", '"', '123', 'https://example.com/a?b=c', 'unbelievable', 'Once upon a time', 'Lily', '\u00a0', 'ǅ',
  );
  const texts = fc.sample(
    fc.oneof(fc.array(words, { minLength: 1, maxLength: 12 }).map((a) => a.join('')), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }))
      .filter((s) => !s.includes('\u2581')),
    { numRuns: 200, seed: 7 },
  );

  for (const [name, data] of [['LLaMA-2', () => llamaVocabFromTokenizerJs()], ['synthetic', () => storyVocab]] as const) {
    it(`${name} vocabulary: same ids from encode, same text from decode`, async () => {
      const path = join(dir, `${name}.gguf`);
      writeVocabGguf(path, data());
      const llama = await getLlama({ gpu: false, build: 'never' });
      const model = await llama.loadModel({ modelPath: path });
      try {
        const t = Tokenizer.fromData(data());
        const diffs = texts.flatMap((s) => {
          const ref = Array.from(model.tokenize(s, false), Number); // no BOS: llama.cpp adds it at evaluation
          const ours = t.encode(s, { bos: false });
          const refText = model.detokenize(model.tokenize(s, false));
          return JSON.stringify(ref) === JSON.stringify(ours) && refText === t.decode(ours) ? [] : [{ s, ref, ours, refText }];
        });
        expect(diffs.slice(0, 3)).toEqual([]);
      } finally {
        await model.dispose();
      }
    });
  }
});
