/**
 * The LLaMA-1/2 SentencePiece vocabulary (32000 pieces), taken from the `llama-tokenizer-js`
 * dev dependency, as TokenizerData — for tests and for GGUF fixtures with a real vocabulary.
 * The scores are rebuilt by the same code `kiln convert` uses (src/cli/vocab.ts); encoding with
 * them reproduces the package's own encoder (tests/tokenizer.test.ts checks it on many strings).
 */
import llamaTokenizerJs from 'llama-tokenizer-js';
import { llamaVocabFrom } from '../src/cli/vocab.js';
import type { TokenizerData } from '../src/formats/checkpoint.js';

let cached: TokenizerData | undefined;

export function llamaVocabFromTokenizerJs(): TokenizerData {
  cached ??= llamaVocabFrom(llamaTokenizerJs);
  return cached;
}

/** The package's own encoder, as a second opinion: (text, bos) → ids. */
export function tokenizerJsEncode(text: string, bos: boolean): number[] {
  return llamaTokenizerJs.encode(text, bos, true);
}
