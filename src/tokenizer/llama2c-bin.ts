/**
 * llama2.c's `tokenizer.bin`: int32 max_token_length, then for each of the vocabulary's tokens
 * a float32 score, an int32 byte length and the piece's UTF-8 bytes (all little-endian). The
 * file does not store its token count: the checkpoint's vocab_size says it. llama2.c's exporter
 * writes spaces where SentencePiece has '▁' and writes BOS/EOS as "\n<s>\n" and "\n</s>\n";
 * the reader undoes both. Ids follow LLaMA: 0 `<unk>`, 1 BOS, 2 EOS, byte pieces `<0xXX>`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { KilnError } from '../../graph/errors.js';
import { parseByteToken, SPACE_MARK, TokenType } from './data.js';
import type { TokenizerData } from '../formats/checkpoint.js';
import { Tokenizer } from './tokenizer.js';

const BOS = 1;
const EOS = 2;
const UNK = 0;

export function tokenizerFromLlama2cBin(path: string, vocabSize: number): Tokenizer {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new KilnError('K1013', `${path}: cannot read the tokenizer: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return Tokenizer.fromData(parseLlama2cTokenizer(bytes, vocabSize, path));
}

/** The TokenizerData in a `tokenizer.bin`'s bytes; `file` names it in errors. */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, file = 'tokenizer.bin'): TokenizerData {
  const bad = (msg: string): KilnError => new KilnError('K1021', `${file}: ${msg}`);
  if (!Number.isInteger(vocabSize) || vocabSize < 3)
    throw bad(`vocab size ${vocabSize} is not valid (need an integer ≥ 3 for <unk>, <s>, </s>)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { ignoreBOM: true });
  let at = 0;
  const need = (n: number, what: string): void => {
    if (at + n > bytes.length)
      throw bad(`${what} needs bytes ${at}..${at + n} but the file has ${bytes.length} (truncated, or fewer than ${vocabSize} tokens?)`);
  };
  need(4, 'max_token_length');
  const maxLen = dv.getInt32(at, true);
  at += 4;
  if (maxLen < 0) throw bad(`max_token_length is ${maxLen}`);
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    need(8, `token ${id}`);
    const score = dv.getFloat32(at, true);
    const len = dv.getInt32(at + 4, true);
    at += 8;
    if (Number.isNaN(score)) throw bad(`token ${id} has a NaN score`);
    if (len < 0 || len > maxLen) throw bad(`token ${id} has length ${len}, expected 0..${maxLen} (max_token_length)`);
    need(len, `token ${id}`);
    const raw = text.decode(bytes.subarray(at, at + len));
    at += len;
    let piece: string;
    let type: number;
    if (id === BOS || id === EOS) {
      piece = raw.trim();
      type = TokenType.control;
    } else if (id === UNK) {
      piece = raw;
      type = TokenType.unknown;
    } else if (parseByteToken(raw) !== undefined) {
      piece = raw;
      type = TokenType.byte;
    } else {
      piece = raw.replaceAll(' ', SPACE_MARK);
      type = TokenType.normal;
    }
    tokens.push(piece);
    scores.push(score);
    types.push(type);
  }
  return { model: 'llama', tokens, scores, types, bos: BOS, eos: EOS, unk: UNK, addBos: true, addSpacePrefix: true };
}

/** The bytes of a `tokenizer.bin` for `d`, as llama2.c's exporter writes them (for tests). */
export function encodeLlama2cTokenizer(d: TokenizerData): Uint8Array {
  if (d.unk !== UNK || d.bos !== BOS || d.eos !== EOS)
    throw new KilnError('K1017', `tokenizer.bin fixes <unk>, <s>, </s> at ids 0, 1, 2; this vocabulary has them at ${d.unk}, ${d.bos}, ${d.eos}`);
  const enc = new TextEncoder();
  const pieces = d.tokens.map((t, id) =>
    enc.encode(id === d.bos ? `\n${t}\n` : id === d.eos ? `\n${t}\n` : t.replaceAll(SPACE_MARK, ' ')),
  );
  const size = 4 + pieces.reduce((s, p) => s + 8 + p.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, pieces.reduce((m, p) => Math.max(m, p.length), 0), true);
  let at = 4;
  pieces.forEach((p, id) => {
    dv.setFloat32(at, d.scores[id] ?? 0, true);
    dv.setInt32(at + 4, p.length, true);
    out.set(p, at + 8);
    at += 8 + p.length;
  });
  return out;
}

export function writeLlama2cTokenizerBin(path: string, d: TokenizerData): void {
  writeFileSync(path, encodeLlama2cTokenizer(d));
}
