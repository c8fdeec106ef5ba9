/**
 * Small LLaMA-style vocabularies for tests and fixtures, laid out as LLaMA's is: `<unk>`,
 * `<s>`, `</s>`, the 256 byte tokens `<0x00>`…`<0xFF>`, then the pieces, best score first.
 * The result can be written as GGUF tokenizer metadata (`tokenizer.ggml.model = "llama"`,
 * tokens, scores, token_type) and llama.cpp loads it.
 */
import { byteTokenName, SPACE_MARK, TokenType } from './data.js';
import type { TokenizerData } from '../formats/checkpoint.js';

export interface SyntheticVocabOptions {
  readonly addBos?: boolean; // default true, as LLaMA
  readonly addSpacePrefix?: boolean; // default true, as LLaMA
}

/**
 * A vocabulary of the special and byte tokens plus `pieces`. A piece is its text (spaces may be
 * written as ' ' or '▁') or [text, score]; pieces without a score get -index, so earlier pieces
 * merge first. Duplicates and pieces that clash with the special or byte names are dropped.
 */
export function syntheticVocab(
  pieces: readonly (string | readonly [string, number])[],
  opts: SyntheticVocabOptions = {},
): TokenizerData {
  const tokens = ['<unk>', '<s>', '</s>'];
  const scores = [0, 0, 0];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    tokens.push(byteTokenName(b));
    scores.push(0);
    types.push(TokenType.byte);
  }
  const seen = new Set(tokens);
  pieces.forEach((p, i) => {
    const [text, score] = typeof p === 'string' ? [p, -i] : p;
    const piece = text.replaceAll(' ', SPACE_MARK);
    if (piece.length === 0 || seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    scores.push(Math.fround(score));
    types.push(TokenType.normal);
  });
  return {
    model: 'llama',
    tokens,
    scores,
    types,
    bos: 1,
    eos: 2,
    unk: 0,
    addBos: opts.addBos ?? true,
    addSpacePrefix: opts.addSpacePrefix ?? true,
  };
}

/**
 * A vocabulary learnt from `corpus` by plain BPE training: every character of the corpus
 * (except newlines, left to byte fallback as in LLaMA) and '▁', plus up to `merges` merged
 * pieces, each the most frequent adjacent pair at its step (ties: the smaller text), scored by
 * the step so that encoding replays the training order. Words are the corpus split before
 * each space, so pieces never span two words — as SentencePiece's defaults have it.
 * Deterministic: the same corpus gives the same vocabulary.
 */
export function trainSyntheticVocab(corpus: string, merges: number, opts: SyntheticVocabOptions = {}): TokenizerData {
  const text = ((opts.addSpacePrefix ?? true) ? ' ' : '') + corpus;
  const wordCounts = new Map<string, number>();
  for (const line of text.replaceAll(' ', SPACE_MARK).split('\n'))
    for (const w of line.split(new RegExp(`(?=${SPACE_MARK})`, 'u')))
      if (w.length > 0) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const words = [...wordCounts].map(([w, n]) => ({ parts: Array.from(w), n }));
  const chars = new Set<string>([SPACE_MARK]);
  for (const w of words) for (const c of w.parts) chars.add(c);

  const learnt: [string, number][] = [];
  for (let step = 0; step < merges; step++) {
    const pairs = new Map<string, { a: string; b: string; n: number }>();
    for (const w of words)
      for (let i = 0; i + 1 < w.parts.length; i++) {
        const a = w.parts[i]!;
        const b = w.parts[i + 1]!;
        const key = `${a}\u0000${b}`;
        const e = pairs.get(key);
        if (e) e.n += w.n;
        else pairs.set(key, { a, b, n: w.n });
      }
    let best: { a: string; b: string; n: number } | undefined;
    for (const e of pairs.values())
      if (!best || e.n > best.n || (e.n === best.n && e.a + e.b < best.a + best.b)) best = e;
    if (!best) break;
    const merged = best.a + best.b;
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === best.a && w.parts[i + 1] === best.b) {
          out.push(merged);
          i++;
        } else out.push(w.parts[i]!);
      }
      w.parts = out;
    }
    if (!chars.has(merged) && !learnt.some(([p]) => p === merged)) learnt.push([merged, -step]);
  }
  const singles = [...chars].sort().map((c, j): [string, number] => [c, -(merges + j)]);
  return syntheticVocab([...learnt, ...singles], opts);
}
