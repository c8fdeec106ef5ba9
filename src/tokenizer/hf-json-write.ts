/**
 * A SentencePiece BPE vocabulary (LLaMA's kind) as a Hugging Face `tokenizer.json`, so that a
 * checkpoint converted to safetensors keeps its tokenizer. hf-json.ts reads it back.
 *
 * SentencePiece scores pieces; Hugging Face ranks merges. The merges are made as Hugging Face's
 * own LLaMA converter makes them: every split of every piece into two pieces of the vocabulary,
 * pieces in score order (ties to the lower id). Read back, a piece scores minus the rank of its
 * first merge, so the merge loop merges in the same order as the scores did.
 */
import type { TokenizerData } from '../formats/checkpoint.js';
import { SPACE_MARK, TokenType } from './data.js';

type Json = Record<string, unknown>;

/** The merges "a b" of `data`'s normal pieces, highest-scoring piece first. */
function merges(data: TokenizerData): string[] {
  const normal = new Set<string>();
  data.tokens.forEach((t, id) => data.types[id] === TokenType.normal && normal.add(t));
  const order = data.tokens.map((_, id) => id).filter((id) => data.types[id] === TokenType.normal);
  order.sort((a, b) => data.scores[b]! - data.scores[a]! || a - b);
  const out: string[] = [];
  for (const id of order) {
    const chars = [...data.tokens[id]!]; // code points: a split never cuts a surrogate pair
    for (let i = 1; i < chars.length; i++) {
      const [a, b] = [chars.slice(0, i).join(''), chars.slice(i).join('')];
      // "a b" is split on its space; pieces hold '▁', never ' ', so the pair reads back as written
      if (normal.has(a) && normal.has(b)) out.push(`${a} ${b}`);
    }
  }
  return out;
}

/** `tokenizer.json` text for a 'llama' (SentencePiece BPE) vocabulary. */
export function hfTokenizerJson(data: TokenizerData): string {
  const vocab: Json = {};
  const added: Json[] = [];
  data.tokens.forEach((t, id) => {
    const type = data.types[id];
    if (type === TokenType.control || type === TokenType.unknown || type === TokenType.userDefined)
      added.push({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: type !== TokenType.userDefined });
    vocab[t] = id;
  });
  const bos = data.tokens[data.bos]!;
  const spaceToMark = { type: 'Replace', pattern: { String: ' ' }, content: SPACE_MARK };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'Sequence', normalizers: data.addSpacePrefix ? [{ type: 'Prepend', prepend: SPACE_MARK }, spaceToMark] : [spaceToMark] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [...(data.addBos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []), { Sequence: { id: 'A', type_id: 0 } }],
      pair: [...(data.addBos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []), { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: data.addBos ? { [bos]: { id: bos, ids: [data.bos], tokens: [bos] } } : {},
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE_MARK }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(data.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: data.tokens[data.unk] ?? '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: merges(data),
    },
  };
  return JSON.stringify(json, null, 1);
}
