/**
 * The tokenizer `kiln convert preset:NAME` writes into the file: LLaMA's own 32000-piece
 * vocabulary when the preset has that many tokens (so the demo speaks with real word pieces),
 * else a synthetic SentencePiece vocabulary of exactly vocabSize tokens.
 */
import { KilnError } from '../../graph/errors.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { SPACE_MARK, TokenType } from '../tokenizer/data.js';
import { syntheticVocab } from '../tokenizer/synthetic.js';

export type VocabKind = 'llama' | 'synthetic';
export const LLAMA_VOCAB_SIZE = 32000;

export async function presetVocab(vocabSize: number, kind: VocabKind = vocabSize === LLAMA_VOCAB_SIZE ? 'llama' : 'synthetic'): Promise<TokenizerData> {
  if (kind === 'llama') {
    if (vocabSize !== LLAMA_VOCAB_SIZE) throw new KilnError('K1016', `--vocab llama: the LLaMA vocabulary has ${LLAMA_VOCAB_SIZE} tokens but the model has ${vocabSize}; use --vocab synthetic`);
    return llamaVocab();
  }
  return exactSyntheticVocab(vocabSize);
}

/** What `llama-tokenizer-js` exports that the vocabulary is built from. */
export interface LlamaTokenizerJs {
  readonly vocabById: readonly string[];
  readonly vocabByString: ReadonlyMap<string, number>;
  readonly merges: ReadonlyMap<string, number>;
}

/**
 * LLaMA-1/2's vocabulary from the npm package `llama-tokenizer-js`, imported only here. It ships
 * pieces and merges but no scores: a piece scores minus the rank of the first merge that makes
 * it (LLaMA's merges are in score order), single characters below every merge, special and byte
 * pieces 0 — which reproduces the package's own encoder.
 */
async function llamaVocab(): Promise<TokenizerData> {
  let lib: LlamaTokenizerJs;
  try {
    // A computed specifier: the package is optional at type-check and install time.
    const name = 'llama-tokenizer-js';
    lib = ((await import(name)) as { default: typeof lib }).default;
  } catch {
    throw new KilnError(
      'K1016',
      "the LLaMA vocabulary comes from the npm package 'llama-tokenizer-js', which is not installed: install it (npm install llama-tokenizer-js) or use --vocab synthetic",
    );
  }
  return llamaVocabFrom(lib);
}

/** The vocabulary from the package's pieces and merges, with the scores rebuilt as above. */
export function llamaVocabFrom(lib: LlamaTokenizerJs): TokenizerData {
  const tokens = lib.vocabById;
  const rankOf = new Map<number, number>();
  let nMerges = 0;
  for (const [pair, priority] of lib.merges) {
    const id = lib.vocabByString.get(pair.replace(' ', ''));
    const rank = (priority - 1) / 2; // priorities are 1, 3, 5, … in merge order
    nMerges = Math.max(nMerges, rank + 1);
    if (id !== undefined && !(rankOf.get(id)! <= rank)) rankOf.set(id, rank);
  }
  const types = tokens.map((_, id) => (id === 0 ? TokenType.unknown : id <= 2 ? TokenType.control : id < 259 ? TokenType.byte : TokenType.normal));
  const scores = tokens.map((_, id) => {
    if (types[id] !== TokenType.normal) return 0;
    const rank = rankOf.get(id);
    return rank !== undefined ? -rank : -(nMerges + id);
  });
  return { model: 'llama', tokens: [...tokens], scores, types, bos: 1, eos: 2, unk: 0, addBos: true, addSpacePrefix: true };
}

/** Characters first (so English text encodes without <unk>), then a few common words, then filler pieces. */
const CHARS = Array.from(' etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,!?\'"-:;()');
const WORDS = ['the', 'and', 'was', 'to', 'a', 'he', 'she', 'it', 'they', 'of', 'in', 'said', 'once', 'upon', 'time', 'there', 'day', 'little', 'big', 'happy'];

/**
 * Exactly `n` tokens: `<unk>`, `<s>`, `</s>`, then — when there is room — the 256 byte tokens,
 * then pieces. Below 259 tokens there is no room for byte fallback: characters the vocabulary
 * lacks encode as `<unk>`.
 */
export function exactSyntheticVocab(n: number): TokenizerData {
  if (!Number.isInteger(n) || n < 4) throw new KilnError('K1016', `a synthetic vocabulary needs at least 4 tokens; the model has ${n}`);
  const pieces: string[] = [];
  const seen = new Set<string>();
  const add = (p: string): void => {
    const piece = p.replaceAll(' ', SPACE_MARK);
    if (!seen.has(piece)) {
      seen.add(piece);
      pieces.push(piece);
    }
  };
  const withBytes = n >= 3 + 256;
  const room = n - 3 - (withBytes ? 256 : 0);
  for (const c of CHARS) add(c);
  // every prefix too, so BPE can merge its way up to the word
  for (const w of WORDS) for (let k = 1; k <= w.length; k++) add(` ${w.slice(0, k)}`);
  for (let i = 0; pieces.length < room; i++) add(` w${i}`);
  const chosen = pieces.slice(0, room);
  if (withBytes) {
    const v = syntheticVocab(chosen);
    if (v.tokens.length !== n) throw new Error(`exactSyntheticVocab: ${v.tokens.length} tokens, wanted ${n}`);
    return v;
  }
  return {
    model: 'llama',
    tokens: ['<unk>', '<s>', '</s>', ...chosen],
    scores: [0, 0, 0, ...chosen.map((_, i) => -i)],
    types: [TokenType.unknown, TokenType.control, TokenType.control, ...chosen.map(() => TokenType.normal)],
    bos: 1,
    eos: 2,
    unk: 0,
    addBos: true,
    addSpacePrefix: true,
  };
}
