/** What a tokenizer is made of, as checkpoint files store it: the contract of src/formats. */
export type { TokenizerData } from '../formats/checkpoint.js';

/** GGUF's `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`). */
export const TokenType = {
  undefined: 0,
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** SentencePiece's visible space, U+2581. */
export const SPACE_MARK = '\u2581';

/** `<0x0A>` for byte 10: the name SentencePiece gives its byte-fallback pieces. */
export function byteTokenName(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** The byte a `<0xXX>` piece stands for, or undefined for any other piece. */
export function parseByteToken(piece: string): number | undefined {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  return m ? parseInt(m[1]!, 16) : undefined;
}
