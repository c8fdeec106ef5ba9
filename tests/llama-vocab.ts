/**
 * The LLaMA-1/2 SentencePiece vocabulary (32000 pieces), taken from the `llama-tokenizer-js`
 * dev dependency, as TokenizerData — for tests and for GGUF fixtures with a real vocabulary.
 *
 * That package ships pieces and merges but no scores; scores are rebuilt as minus the rank of
 * the first merge making each piece (LLaMA's merges are in score order), single characters
 * below all of them, special and byte pieces 0. Encoding with these scores reproduces the
 * package's own encoder (tests/tokenizer.test.ts checks it on many strings).
 */
import llamaTokenizerJs from 'llama-tokenizer-js';
import type { TokenizerData } from '../src/formats/checkpoint.js';
import { TokenType } from '../src/tokenizer/data.js';

let cached: TokenizerData | undefined;

export function llamaVocabFromTokenizerJs(): TokenizerData {
  if (cached) return cached;
  const tokens = llamaTokenizerJs.vocabById;
  const ids = llamaTokenizerJs.vocabByString;
  // merges: "a b" → priority 1, 3, 5, … in merge order.
  const rankOf = new Map<number, number>();
  let nMerges = 0;
  for (const [pair, priority] of llamaTokenizerJs.merges) {
    const id = ids.get(pair.replace(' ', ''));
    const rank = (priority - 1) / 2;
    nMerges = Math.max(nMerges, rank + 1);
    if (id !== undefined && !(rankOf.get(id)! <= rank)) rankOf.set(id, rank);
  }
  const types = tokens.map((_, id) =>
    id === 0 ? TokenType.unknown : id <= 2 ? TokenType.control : id < 259 ? TokenType.byte : TokenType.normal,
  );
  const scores = tokens.map((_, id) => {
    if (types[id] !== TokenType.normal) return 0;
    const rank = rankOf.get(id);
    return rank !== undefined ? -rank : -(nMerges + id);
  });
  cached = { model: 'llama', tokens: [...tokens], scores, types, bos: 1, eos: 2, unk: 0, addBos: true, addSpacePrefix: true };
  return cached;
}

/** The package's own encoder, as a second opinion: (text, bos) → ids. */
export function tokenizerJsEncode(text: string, bos: boolean): number[] {
  return llamaTokenizerJs.encode(text, bos, true);
}
