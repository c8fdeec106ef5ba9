/**
 * The LLaMA tokenizer: SentencePiece BPE with byte fallback (see bpe.ts), BOS, and a
 * dummy-prefix space.
 *
 * Encoding follows llama.cpp: the text is cut at user-defined pieces (type 4), which are
 * emitted whole; each run of plain text between them gets the dummy-prefix space when it
 * starts the text or follows such a piece, has its spaces turned into U+2581, and goes
 * through the BPE merge loop. Control pieces (`<s>`, `</s>`) written in the text are plain
 * text, never the control token.
 *
 * Decoding: U+2581 is a space, `<0xXX>` pieces are bytes assembled into UTF-8, control,
 * unknown and unused tokens produce nothing, user-defined pieces are copied verbatim. The
 * dummy-prefix space is removed from the first text token when it starts the sequence or
 * directly follows a BOS — so `decode(encode(s)) === s` with or without BOS. (llama.cpp's
 * `llama_detokenize` strips it only when the sequence does not start with BOS; llama2.c strips
 * it only after BOS; Hugging Face's LLaMA decoder strips it at the start. The rule here is
 * their union, and it is what makes the round trip hold.)
 */
import { KilnError } from '../../graph/errors.js';
import { spmEncode, type SpmVocab } from './bpe.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { byteTokenName, parseByteToken, SPACE_MARK, TokenType } from './data.js';
import { createStreamDecoder, type StreamDecoder, type StreamDecoderOptions } from './stream.js';

export type { TokenizerData } from '../formats/checkpoint.js';
export type { StreamDecoder, StreamDecoderOptions } from './stream.js';

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

export class Tokenizer {
  readonly bos: number;
  readonly eos: number;
  readonly unk: number;
  readonly addBos: boolean;
  readonly addSpacePrefix: boolean;
  private readonly vocab: SpmVocab;
  /** user-defined pieces, longest first, for cutting the text before BPE */
  private readonly userPieces: readonly string[];
  private readonly pieceBytes: (Uint8Array | undefined)[];

  private constructor(readonly data: TokenizerData) {
    const n = data.tokens.length;
    const bad = (msg: string): KilnError => new KilnError('K1021', `tokenizer: ${msg}`);
    if (data.model !== 'llama') throw bad(`model ${JSON.stringify(data.model)} is not supported (only 'llama', SentencePiece BPE)`);
    if (n === 0) throw bad('the vocabulary is empty');
    if (data.scores.length !== n) throw bad(`${n} tokens but ${data.scores.length} scores`);
    if (data.types.length !== n && data.types.length !== 0) throw bad(`${n} tokens but ${data.types.length} token types`);
    for (const [name, id] of [['bos', data.bos], ['eos', data.eos], ['unk', data.unk]] as const)
      if (!Number.isInteger(id) || id < 0 || id >= n) throw bad(`${name} id ${id} is outside the vocabulary (${n} tokens)`);
    this.bos = data.bos;
    this.eos = data.eos;
    this.unk = data.unk;
    this.addBos = data.addBos;
    this.addSpacePrefix = data.addSpacePrefix;

    const idOf = new Map<string, number>();
    const byteIds = new Int32Array(256).fill(-1);
    const user: string[] = [];
    for (let id = 0; id < n; id++) {
      const piece = data.tokens[id]!;
      // First id wins on duplicates, as a reader scanning the list would find it.
      if (!idOf.has(piece)) idOf.set(piece, id);
      const type = this.typeOf(id);
      if (type === TokenType.userDefined && piece.length > 0) user.push(piece);
    }
    for (let b = 0; b < 256; b++) byteIds[b] = idOf.get(byteTokenName(b)) ?? -1;
    this.vocab = { idOf, scores: Float32Array.from(data.scores), byteIds, unk: data.unk };
    this.userPieces = user.sort((a, b) => b.length - a.length);
    this.pieceBytes = new Array<Uint8Array | undefined>(n);
  }

  static fromData(d: TokenizerData): Tokenizer {
    return new Tokenizer(d);
  }

  get vocabSize(): number {
    return this.data.tokens.length;
  }

  /** The piece's GGUF token type; for files without types, guessed from the ids and names. */
  typeOf(id: number): number {
    const t = this.data.types[id];
    if (t !== undefined) return t;
    if (id === this.data.unk) return TokenType.unknown;
    if (id === this.data.bos || id === this.data.eos) return TokenType.control;
    return parseByteToken(this.data.tokens[id] ?? '') === undefined ? TokenType.normal : TokenType.byte;
  }

  /** Token ids for `text`; `bos` defaults to the vocabulary's own `addBos`. */
  encode(text: string, opts: { bos?: boolean } = {}): number[] {
    const out: number[] = [];
    if (opts.bos ?? this.addBos) out.push(this.bos);
    let prevSpecial = true; // the dummy prefix goes before text that starts the input
    const plain = (s: string): void => {
      if (s.length === 0) return;
      const prefixed = this.addSpacePrefix && prevSpecial ? ' ' + s : s;
      spmEncode(prefixed.replaceAll(' ', SPACE_MARK), this.vocab, out);
      prevSpecial = false;
    };
    if (this.userPieces.length === 0) {
      plain(text);
      return out;
    }
    let from = 0;
    for (let i = 0; i < text.length; ) {
      const hit = this.userPieces.find((p) => text.startsWith(p, i));
      if (hit === undefined) {
        i++;
        continue;
      }
      plain(text.slice(from, i));
      out.push(this.vocab.idOf.get(hit)!);
      prevSpecial = true;
      i += hit.length;
      from = i;
    }
    plain(text.slice(from));
    return out;
  }

  /** The text of a whole sequence (see the header for the leading-space rule). */
  decode(ids: readonly number[]): string {
    const d = this.streamDecoder({ atStart: true });
    let s = '';
    for (const id of ids) s += d.push(id);
    return s + d.flush();
  }

  /** A decoder that returns text token by token and never splits a UTF-8 character. */
  streamDecoder(opts: StreamDecoderOptions = {}): StreamDecoder {
    return createStreamDecoder(this, opts);
  }

  /** The stored piece of a token, e.g. '▁time' or '<0x0A>'. */
  piece(id: number): string {
    this.checkId(id);
    return this.data.tokens[id]!;
  }

  /** The UTF-8 bytes a token decodes to on its own (with its spaces; empty for control). */
  bytesOf(id: number): Uint8Array {
    const cached = this.pieceBytes[id];
    if (cached !== undefined) return cached;
    this.checkId(id);
    const piece = this.data.tokens[id]!;
    let bytes: Uint8Array;
    switch (this.typeOf(id)) {
      case TokenType.control:
      case TokenType.unknown:
      case TokenType.unused:
        bytes = EMPTY;
        break;
      case TokenType.userDefined:
        bytes = utf8.encode(piece);
        break;
      case TokenType.byte: {
        const b = parseByteToken(piece);
        bytes = b === undefined ? utf8.encode(piece.replaceAll(SPACE_MARK, ' ')) : Uint8Array.of(b);
        break;
      }
      default:
        bytes = utf8.encode(piece.replaceAll(SPACE_MARK, ' '));
    }
    this.pieceBytes[id] = bytes;
    return bytes;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.data.tokens.length)
      throw new KilnError('K1017', `token id ${id} is outside the vocabulary (${this.data.tokens.length} tokens)`);
  }
}
