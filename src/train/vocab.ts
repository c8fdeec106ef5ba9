/**
 * A tokenizer for a model that has none (a preset or a model file trained from scratch), made
 * from the training text and sized to the model's vocabulary exactly, in the LLaMA tokenizer's
 * form (SentencePiece BPE: pieces with scores, `▁` for a space), so that it is saved inside the
 * trained GGUF and read back by kiln and llama.cpp like any other.
 *
 * - A vocabulary with room for the 256 byte-fallback pieces and at least 64 more: LLaMA's layout
 *   (`<unk>`, `<s>`, `</s>`, `<0x00>`…`<0xFF>`), the text's characters and BPE merges learnt
 *   from the text (tokenizer/synthetic.ts), so no text is ever unknown.
 * - A smaller one (preset:tiny has 64): `<unk>`, `<s>`, `</s>` and the text's most frequent
 *   characters; a character that does not fit encodes as `<unk>`.
 * Slots left over are unused pieces, which the tokenizer never produces.
 */
import type { TokenizerData } from '../formats/checkpoint.js';
import { SPACE_MARK, TokenType } from '../tokenizer/data.js';
import { trainSyntheticVocab } from '../tokenizer/synthetic.js';

const SPECIALS = 3;
const BYTES = 256;
/** Byte fallback only where it leaves this many slots for pieces of the text itself. */
const MIN_PIECES = 64;

function padded(d: TokenizerData, vocabSize: number): TokenizerData {
  const tokens = d.tokens.slice(0, vocabSize);
  const scores = d.scores.slice(0, vocabSize);
  const types = d.types.slice(0, vocabSize);
  for (let i = tokens.length; i < vocabSize; i++) {
    tokens.push(`<unused${i}>`);
    scores.push(-1e9);
    types.push(TokenType.unused);
  }
  return { ...d, tokens, scores, types };
}

export function vocabularyFromText(text: string, vocabSize: number): TokenizerData {
  const counts = new Map<string, number>();
  for (const c of (' ' + text).replaceAll(' ', SPACE_MARK)) counts.set(c, (counts.get(c) ?? 0) + 1);
  const chars = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);
  if (vocabSize >= SPECIALS + BYTES + MIN_PIECES) {
    const singles = chars.filter((c) => c !== '\n').length; // newlines go to byte fallback, as in LLaMA
    const merges = vocabSize - SPECIALS - BYTES - singles;
    if (merges >= 0) return padded(trainSyntheticVocab(text, merges), vocabSize);
  }
  const pieces = chars.slice(0, vocabSize - SPECIALS);
  return padded(
    {
      model: 'llama',
      tokens: ['<unk>', '<s>', '</s>', ...pieces],
      scores: [0, 0, 0, ...pieces.map((_, i) => -i)],
      types: [TokenType.unknown, TokenType.control, TokenType.control, ...pieces.map(() => TokenType.normal)],
      bos: 1,
      eos: 2,
      unk: 0,
      addBos: true,
      addSpacePrefix: true,
    },
    vocabSize,
  );
}
