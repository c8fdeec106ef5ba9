/**
 * A Hugging Face `tokenizer.json` of the LLaMA kind: `model.type` "BPE" with `byte_fallback`,
 * `vocab` (piece → id) and `merges` ("a b" strings or [a, b] pairs), `added_tokens` for the
 * special ones.
 *
 * Hugging Face ranks merges; SentencePiece scores pieces. LLaMA's merges were generated from
 * the scores (every split of every piece, in score order), so a piece's score here is minus the
 * rank of the first merge that makes it: the merge loop then replays the merge order. Pieces no
 * merge makes (single characters) score below every merged one, and the special and byte
 * pieces score 0, as in LLaMA's own file.
 *
 * The dummy-prefix space is read from the normalizer (a `Prepend` of '▁', LLaMA-2) or the
 * pre-tokenizer (`Metaspace` with `prepend_scheme` "always"/"first" or `add_prefix_space`);
 * BOS from the post-processor's template, else from `tokenizer_config.json` beside the file
 * (`add_bos_token`), else true as LLaMA.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import { parseByteToken, SPACE_MARK, TokenType } from './data.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { Tokenizer } from './tokenizer.js';

export function tokenizerFromHfJson(path: string): Tokenizer {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const why = e instanceof SyntaxError ? `is not JSON (${e.message})` : `cannot be read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
    throw new KilnError(e instanceof SyntaxError ? 'K1021' : 'K1013', `${path}: ${why}`.replace(/[\r\n]+/g, ' '));
  }
  let addBosFallback: boolean | undefined;
  const cfgPath = join(dirname(path), 'tokenizer_config.json');
  if (existsSync(cfgPath)) {
    try {
      const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as { add_bos_token?: unknown };
      if (typeof cfg.add_bos_token === 'boolean') addBosFallback = cfg.add_bos_token;
    } catch {
      // A broken config beside a good tokenizer.json only loses the BOS hint.
    }
  }
  return Tokenizer.fromData(parseHfTokenizerJson(json, path, addBosFallback));
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);

/** The TokenizerData of a parsed `tokenizer.json`; `file` names it in errors. */
export function parseHfTokenizerJson(json: unknown, file = 'tokenizer.json', addBosFallback?: boolean): TokenizerData {
  const bad = (msg: string): KilnError => new KilnError('K1021', `${file}: ${msg}`);
  if (!isObj(json) || !isObj(json.model)) throw bad('no "model" object');
  const model = json.model;
  if (model.type !== undefined && model.type !== 'BPE')
    throw bad(`model.type is ${JSON.stringify(model.type)}, expected "BPE" (LLaMA's SentencePiece BPE)`);
  if (!isObj(model.vocab)) throw bad('model.vocab is not an object of piece → id');

  const tokens: (string | undefined)[] = [];
  const types: number[] = [];
  const put = (piece: string, id: unknown, type: number): void => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 1 << 24)
      throw bad(`the id of ${JSON.stringify(piece)} is ${JSON.stringify(id)}, expected an integer id`);
    tokens[id] = piece;
    types[id] = type;
  };
  for (const [piece, id] of Object.entries(model.vocab))
    put(piece, id, parseByteToken(piece) === undefined ? TokenType.normal : TokenType.byte);
  const added = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  for (const t of added) {
    if (!isObj(t) || typeof t.content !== 'string') throw bad('an added_tokens entry has no "content"');
    put(t.content, t.id, t.special === true ? TokenType.control : TokenType.userDefined);
  }
  const idOf = new Map<string, number>();
  tokens.forEach((t, id) => t !== undefined && !idOf.has(t) && idOf.set(t, id));

  const unkPiece = typeof model.unk_token === 'string' ? model.unk_token : '<unk>';
  const unk = idOf.get(unkPiece) ?? 0;
  if (tokens[unk] !== undefined) types[unk] = TokenType.unknown;
  const bos = idOf.get('<s>');
  const eos = idOf.get('</s>');
  if (bos === undefined || eos === undefined) throw bad('no "<s>" and "</s>" pieces: not a LLaMA vocabulary');
  types[bos] = TokenType.control;
  types[eos] = TokenType.control;

  // Score = -(rank of the first merge that makes the piece).
  const merges = Array.isArray(model.merges) ? model.merges : [];
  const scores: number[] = [];
  merges.forEach((m: unknown, rank) => {
    let pair: unknown[];
    if (typeof m === 'string') pair = m.split(' ');
    else if (Array.isArray(m)) pair = m;
    else throw bad(`merge ${rank} is neither "a b" nor [a, b]`);
    if (pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string')
      throw bad(`merge ${rank} (${JSON.stringify(m)}) is not a pair of pieces`);
    const id = idOf.get(pair[0] + pair[1]);
    if (id === undefined) throw bad(`merge ${rank} makes ${JSON.stringify(pair[0] + pair[1])}, which is not in the vocabulary`);
    if (scores[id] === undefined) scores[id] = -rank;
  });

  const n = tokens.length;
  const full: string[] = [];
  for (let id = 0; id < n; id++) {
    const t = tokens[id];
    // Holes in the id range become unused placeholders, so ids keep their meaning.
    full.push(t ?? `<unused${id}>`);
    if (t === undefined) types[id] = TokenType.unused;
    if (scores[id] === undefined) scores[id] = types[id] === TokenType.normal ? -(merges.length + id) : 0;
  }

  return {
    model: 'llama',
    tokens: full,
    scores,
    types: Array.from({ length: n }, (_, id) => types[id] ?? TokenType.unused),
    bos,
    eos,
    unk,
    addBos: readAddBos(json.post_processor, full[bos]!) ?? addBosFallback ?? true,
    addSpacePrefix: readSpacePrefix(json.normalizer) || readSpacePrefix(json.pre_tokenizer),
  };
}

/** Whether a normalizer or pre-tokenizer (possibly a Sequence) puts '▁' before the text. */
function readSpacePrefix(x: unknown): boolean {
  if (!isObj(x)) return false;
  if (x.type === 'Sequence') {
    const parts = Array.isArray(x.normalizers) ? x.normalizers : Array.isArray(x.pretokenizers) ? x.pretokenizers : [];
    return parts.some(readSpacePrefix);
  }
  if (x.type === 'Prepend') return x.prepend === SPACE_MARK;
  if (x.type === 'Metaspace') {
    if (typeof x.prepend_scheme === 'string') return x.prepend_scheme !== 'never';
    return x.add_prefix_space === true;
  }
  return false;
}

/** True/false when the post-processor's template starts/does not start with BOS; else undefined. */
function readAddBos(pp: unknown, bosPiece: string): boolean | undefined {
  if (!isObj(pp)) return undefined;
  if (pp.type === 'Sequence' && Array.isArray(pp.processors)) {
    for (const p of pp.processors) {
      const r = readAddBos(p, bosPiece);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  if (pp.type !== 'TemplateProcessing' || !Array.isArray(pp.single)) return undefined;
  const first: unknown = pp.single[0];
  return isObj(first) && isObj(first.SpecialToken) && first.SpecialToken.id === bosPiece;
}
