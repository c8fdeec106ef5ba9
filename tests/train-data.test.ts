import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataCursor, Rng, cleanText, describeData, permutation, readTokens, splitData, windowCount, type ReadOptions } from '../src/train/data.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { trainSyntheticVocab } from '../src/tokenizer/synthetic.js';
import { thrown } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-train-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: string | Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, body);
  return p;
};

/** A tokenizer of bytes: id = the UTF-8 byte + 3 (0 unk, 1 BOS, 2 EOS), as the test reads it. */
const BYTES: ReadOptions = { tokenize: (t) => Array.from(new TextEncoder().encode(t), (b) => b + 3), bos: 1, vocabSize: 259 };
const ids = (s: string): number[] => BYTES.tokenize(s);
const range = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

describe('cleaning', () => {
  it('strips HTML: tags, comments, scripts and styles go; block tags break lines; entities decode', () => {
    const html = '<!DOCTYPE html><html><head><style>p { color: red }</style><script>if (a < b) x();</script></head><body><p>Once <b>upon</b> a&nbsp;time</p><!-- note --><p>x &lt; y &amp;&amp; 3 &gt; 2 &#233;&#x41;</p></body></html>';
    expect(cleanText(html, { stripHtml: true })).toBe('\nOnce upon a time\n\nx < y && 3 > 2 éA\n');
    expect(cleanText('a < b and c > d', { stripHtml: true })).toBe('a < b and c > d'); // not tags
    expect(cleanText('&lt;b&gt;', { stripHtml: true })).toBe('<b>'); // decoded after the tags are gone, so kept
  });

  it('normalizes whitespace: runs collapse, lines trim, 3+ newlines become 2, CRLF becomes LF', () => {
    expect(cleanText('  Once\t\tupon   a time  \r\n\r\n\r\n\r\nThe  end. \n', { normalizeWhitespace: true })).toBe('Once upon a time\n\nThe end.');
    expect(cleanText('a\n\nb', { normalizeWhitespace: true })).toBe('a\n\nb');
    expect(cleanText('<p>a</p>\n\n\n<p>b</p>', { stripHtml: true, normalizeWhitespace: true })).toBe('a\n\nb');
  });

  it('leaves text alone unless asked', () => {
    expect(cleanText('  <b>x</b>\n\n\n\n')).toBe('  <b>x</b>\n\n\n\n');
  });
});

describe('reading training files', () => {
  it('joins .txt, .jsonl and .json files into one stream, a BOS before every text document', () => {
    const a = file('a.txt', 'hi\n');
    const b = file('b.jsonl', '{"text":"ab"}\n\n  \n{"text":"c","id":7}\r\n');
    const c = file('c.json', '[5, 6, 7]');
    const s = readTokens([a, b, c], BYTES);
    expect(Array.from(s.ids)).toEqual([1, ...ids('hi\n'), 1, ...ids('ab'), 1, ...ids('c'), 5, 6, 7]);
    expect(s.files).toEqual([
      { path: a, tokens: 4, documents: 1 },
      { path: b, tokens: 5, documents: 2 },
      { path: c, tokens: 3, documents: 1 },
    ]);
  });

  it('cleans each document as asked; documents empty after cleaning are skipped', () => {
    const j = file('clean.jsonl', '{"text":"<p>a  b</p>"}\n{"text":"<br>"}\n{"text":"c"}\n');
    const s = readTokens([j], { ...BYTES, clean: { stripHtml: true, normalizeWhitespace: true } });
    expect(Array.from(s.ids)).toEqual([1, ...ids('a b'), 1, ...ids('c')]);
    expect(s.files[0]!.documents).toBe(2);
    const t = file('tags-only.txt', '<p></p>\n');
    expect(thrown(() => readTokens([t], { ...BYTES, clean: { stripHtml: true, normalizeWhitespace: true } })).message).toBe(`${t}: no text left after cleaning`);
  });

  it('works with kiln’s LLaMA tokenizer', () => {
    const tok = Tokenizer.fromData(trainSyntheticVocab('once upon a time', 20));
    const p = file('story.txt', 'once upon a time');
    const s = readTokens([p], { tokenize: (t) => tok.encode(t, { bos: false }), bos: tok.bos, vocabSize: tok.vocabSize });
    expect(s.ids[0]).toBe(tok.bos);
    expect(s.ids.length).toBeLessThan(8); // merged pieces, not bytes
    expect(tok.decode(Array.from(s.ids))).toBe('once upon a time');
  });

  it('names the file and line of every problem (K1023)', () => {
    const msg = (name: string, body: string | Uint8Array, opts: ReadOptions = BYTES): string => {
      const p = file(name, body);
      const e = thrown(() => readTokens([p], opts));
      expect(e.code).toBe('K1023');
      expect(e.message).not.toMatch(/\n/);
      return e.message.slice(p.length + 2);
    };
    expect(msg('empty.txt', '')).toBe('the file is empty');
    expect(msg('bin.txt', new Uint8Array([0x68, 0x69, 0x0a, 0x00, 0x01]))).toBe('a binary file, not text (a NUL byte at offset 3, line 2)');
    expect(msg('latin1.txt', new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]))).toBe('not UTF-8 text (byte 0xe9 at offset 3, line 1)');
    expect(msg('cut.txt', new Uint8Array([0x61, 0x0a, 0x0a, 0xe2, 0x82]))).toBe('not UTF-8 text (byte 0xe2 at offset 3, line 3)');
    expect(msg('surrogate.txt', new Uint8Array([0x61, 0xed, 0xa0, 0x80]))).toBe('not UTF-8 text (byte 0xed at offset 1, line 1)');
    expect(msg('bad.jsonl', '{"text":"a"}\n{"text": oops}\n')).toMatch(/^line 2 is not JSON \(/);
    expect(msg('notext.jsonl', '{"text":"a"}\n\n{"body":"b"}\n')).toBe('line 3 has no "text" field');
    expect(msg('number.jsonl', '{"text":12}\n')).toBe('line 1: "text" is a number, not a string');
    expect(msg('array.jsonl', '["a"]\n')).toBe('line 1 is an array, not a JSON object with a "text" string');
    expect(msg('bytes.jsonl', Buffer.concat([Buffer.from('{"text":"a"}\n{"text":"'), Buffer.from([0xff]), Buffer.from('"}\n')]))).toBe('not UTF-8 text (byte 0xff at offset 22, line 2)');
    expect(msg('blank.jsonl', '\n  \n')).toBe('no line with any text');
    expect(msg('object.json', '{"ids":[1]}')).toBe('holds an object; a .json training file is one array of token ids');
    expect(msg('none.json', '[]')).toBe('the array of token ids is empty');
    expect(msg('big.json', '[1, 2, 259]')).toBe('element 2 is 259, outside the vocabulary [0, 259)');
    expect(msg('neg.json', '[-1]')).toBe('element 0 is -1, outside the vocabulary [0, 259)');
    expect(msg('frac.json', '[1, 2.5]')).toBe('element 1 is 2.5, not a whole-number token id');
    expect(msg('str.json', '[1, "2"]')).toBe('element 1 is a string, not a whole-number token id');
    expect(msg('broken.json', '[1, 2')).toMatch(/^not JSON \(/);
    // any other name is read as text, and a binary file is refused by its bytes
    expect(msg('model.bin', Buffer.from([1, 0, 2]))).toMatch(/^a binary file, not text \(a NUL byte at offset 1, line 1\)$/);
    expect(msg('wide.jsonl', '{"text":"a"}\n{"text":"b"}\n', { ...BYTES, vocabSize: 50 })).toBe('line 1: the tokenizer gave id 100, outside the vocabulary [0, 50)');
  });

  it('says why a file cannot be read, and that none were given', () => {
    const missing = join(dir, 'missing.txt');
    expect(thrown(() => readTokens([missing], BYTES)).message).toBe(`${missing}: cannot read: no such file`);
    const folder = join(dir, 'folder.txt');
    mkdirSync(folder);
    expect(thrown(() => readTokens([folder], BYTES)).message).toBe(`${folder}: cannot read: it is a folder, not a file`);
    expect(thrown(() => readTokens([], BYTES)).message).toBe('no training data files were given');
  });
});

describe('windows and the validation split', () => {
  it('window w is ids[w·T, w·T + T + 1): T inputs and their next tokens; ⌊(n − 1)/T⌋ of them', () => {
    expect([windowCount(9, 4), windowCount(8, 4), windowCount(5, 4), windowCount(4, 4), windowCount(0, 4)]).toEqual([2, 1, 1, 0, 0]);
    const d = splitData(range(10), { seq: 3, valFraction: 0 });
    expect(d.train.count).toBe(3);
    expect(d.val).toBeUndefined();
    const w = d.train.row(2);
    expect(Array.from(w.input)).toEqual([6, 7, 8]);
    expect(Array.from(w.target)).toEqual([7, 8, 9]);
  });

  it('refuses data shorter than one window, saying how many tokens it has and needs', () => {
    const e = thrown(() => splitData(range(256), { seq: 256 }));
    expect(e.code).toBe('K1023');
    expect(e.message).toBe('the training data has 256 tokens; one window of --seq 256 needs 257');
    expect(thrown(() => splitData(range(100), { seq: 8, val: range(5), valName: 'val.txt' })).message).toBe('the validation data (val.txt) has 5 tokens; one window of --seq 8 needs 9');
    expect(thrown(() => splitData(range(100), { seq: 0 })).message).toBe('--seq (0) must be a whole number ≥ 1');
    expect(thrown(() => splitData(range(100), { seq: 4, valFraction: 1 })).message).toBe('--val-fraction (1) must be at least 0 and less than 1');
  });

  it('holds out 10% of the windows by default, at least one when there are two, chosen by the seed', () => {
    const sizes = (n: number, frac?: number): [number, number] => {
      const d = splitData(range(n * 4 + 1), { seq: 4, valFraction: frac });
      return [d.train.count, d.val?.count ?? 0];
    };
    expect(sizes(100)).toEqual([90, 10]);
    expect(sizes(5)).toEqual([4, 1]);
    expect(sizes(2)).toEqual([1, 1]);
    expect(sizes(1)).toEqual([1, 0]);
    expect(sizes(10, 0.95)).toEqual([1, 9]); // never all of them
    expect(sizes(10, 0)).toEqual([10, 0]);

    const which = (seed: number): number[] => Array.from(splitData(range(401), { seq: 4, seed }).val!.which);
    expect(which(1)).toEqual(which(1));
    expect(which(1)).not.toEqual(which(2));
    const d = splitData(range(401), { seq: 4, seed: 3 });
    const all = [...d.train.which, ...d.val!.which].sort((a, b) => a - b);
    expect(all).toEqual(Array.from(range(100))); // disjoint, and every window in one of them
    expect(Array.from(d.val!.which)).toEqual([...d.val!.which].sort((a, b) => a - b)); // in stream order
  });

  it('a separate validation stream is used whole', () => {
    const d = splitData(range(41), { seq: 4, val: range(13) });
    expect([d.train.count, d.val!.count, d.tokens, d.valTokens]).toEqual([10, 3, 41, 13]);
    expect(describeData(d)).toBe('41 tokens: 10 training windows and 3 validation windows (13 tokens of their own) of 4 + 1 tokens');
  });

  it('evaluation batches go through the validation windows in order, the last one short', () => {
    const d = splitData(range(41), { seq: 4, val: range(21) });
    const batches = [...d.val!.batches(2)];
    expect(batches.map((b) => b.inputs.length)).toEqual([2, 2, 1]);
    expect(Array.from(batches[2]!.targets[0]!)).toEqual([17, 18, 19, 20]);
    expect([...d.val!.batches(2, 2)].length).toBe(2);
  });

  it('reports its sizes in one line', () => {
    const s = readTokens([file('sizes.txt', 'x'.repeat(2999))], BYTES);
    const d = splitData(s.ids, { seq: 64 });
    expect(describeData(d, s.files)).toBe('3,000 tokens from 1 file: 41 training windows and 5 validation windows of 64 + 1 tokens');
    expect(describeData(splitData(range(10), { seq: 9 }))).toBe('10 tokens: 1 training window and no validation windows of 9 + 1 tokens');
  });
});

describe('the training cursor', () => {
  const data = splitData(range(7 * 3 + 1), { seq: 3, valFraction: 0 }); // 7 windows; window w starts with id 3w
  const firsts = (b: { inputs: Int32Array[] }): number[] => b.inputs.map((r) => r[0]! / 3);

  it('without shuffling, row b of step s is window (s·B + b) mod count', () => {
    const c = new DataCursor(data.train);
    expect(firsts(c.next(3))).toEqual([0, 1, 2]);
    expect(firsts(c.next(3))).toEqual([3, 4, 5]);
    expect(firsts(c.next(3))).toEqual([6, 0, 1]);
    expect([c.position, c.epoch]).toEqual([9, 1]);
  });

  it('with shuffling, every epoch is a seeded permutation of all the windows', () => {
    const c = new DataCursor(data.train, { shuffle: true, seed: 5 });
    const epochs = [0, 1, 2].map(() => firsts(c.next(7)));
    for (const e of epochs) expect([...e].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(new Set(epochs.map(String)).size).toBe(3);
    const again = new DataCursor(data.train, { shuffle: true, seed: 5 });
    expect(firsts(again.next(7))).toEqual(epochs[0]);
    expect(firsts(new DataCursor(data.train, { shuffle: true, seed: 6 }).next(7))).not.toEqual(epochs[0]);
  });

  it('restores from its JSON state and goes on bit for bit, across epochs', () => {
    const straight = new DataCursor(data.train, { shuffle: true, seed: 9 });
    const want = Array.from({ length: 8 }, () => straight.next(3));
    const first = new DataCursor(data.train, { shuffle: true, seed: 9 });
    const got = Array.from({ length: 3 }, () => first.next(3));
    const saved = JSON.parse(JSON.stringify(first.state()));
    expect(saved).toEqual({ kind: 'kiln.data-cursor', position: 9, shuffle: true, seed: 9, windows: 7 });
    const resumed = new DataCursor(data.train, { shuffle: true, seed: 9 });
    resumed.restore(saved);
    for (let i = 3; i < 8; i++) got.push(resumed.next(3));
    expect(got).toEqual(want);
  });

  it('refuses a state saved over other data or options (K1025)', () => {
    const s = new DataCursor(data.train, { shuffle: true, seed: 1 }).state();
    const msg = (c: DataCursor, st: unknown): string => {
      const e = thrown(() => c.restore(st as never));
      expect(e.code).toBe('K1025');
      return e.message;
    };
    const other = splitData(range(9 * 3 + 1), { seq: 3, valFraction: 0 });
    expect(msg(new DataCursor(other.train, { shuffle: true, seed: 1 }), s)).toBe("the checkpoint's data position was saved over 7 training windows; this data has 9");
    expect(msg(new DataCursor(data.train, { seed: 1 }), s)).toBe("the checkpoint's data position was saved with shuffling; this run is without");
    expect(msg(new DataCursor(data.train, { shuffle: true, seed: 2 }), s)).toBe("the checkpoint's data position was saved with seed 1; this run has seed 2");
    expect(msg(new DataCursor(data.train), { kind: 'other' })).toBe("the checkpoint's data position is not a kiln data cursor state");
    expect(msg(new DataCursor(data.train, { shuffle: true, seed: 1 }), { ...s, position: -1 })).toBe("the checkpoint's data position (-1) is not a whole number ≥ 0");
  });

  it('refuses a bad batch or seed as command-line values (K1016)', () => {
    expect(thrown(() => new DataCursor(data.train).next(0)).message).toBe('--batch (0) must be a whole number ≥ 1');
    expect(thrown(() => new DataCursor(data.train, { seed: -1 })).message).toBe(`--seed (-1) must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
  });
});

describe('Rng (xoshiro128**)', () => {
  it('gives the reference sequence from state [1, 2, 3, 4]', () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    expect([r.u32(), r.u32(), r.u32()]).toEqual([11520, 0, 5927040]);
  });

  it('saves and restores its state exactly; seeds and streams give different sequences', () => {
    const a = Rng.seeded(42);
    for (let i = 0; i < 10; i++) a.u32();
    const b = Rng.fromState(JSON.parse(JSON.stringify(a.state())));
    expect(Array.from({ length: 5 }, () => b.u32())).toEqual(Array.from({ length: 5 }, () => a.u32()));
    const first = (r: Rng): number => r.u32();
    expect(new Set([first(Rng.seeded(42)), first(Rng.seeded(43)), first(Rng.seeded(42, 1)), first(Rng.seeded(2 ** 40 + 42))]).size).toBe(4);
    expect(thrown(() => Rng.fromState([0, 0, 0, 0])).code).toBe('K1025');
  });

  it('below(n) is uniform-looking and in range; float() is in [0, 1); permutation is one', () => {
    const r = Rng.seeded(1);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 6000; i++) counts[r.below(6)]++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    for (let i = 0; i < 1000; i++) {
      const x = r.float();
      expect(x >= 0 && x < 1).toBe(true);
    }
    expect(Array.from(permutation(50, r)).sort((a, b) => a - b)).toEqual(Array.from(range(50)));
  });
});
