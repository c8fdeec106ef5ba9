/**
 * Streamed decoding: token ids in, text out, never half a character. Byte-fallback tokens
 * carry one UTF-8 byte each, so an emoji may arrive as four tokens; the bytes of an incomplete
 * character wait here until the rest comes (or `flush` ends the stream, and an unfinished one
 * becomes U+FFFD, as any UTF-8 decoder would write it).
 */

/** What a stream decoder needs from the tokenizer: the bytes a token stands for. */
export interface PieceBytes {
  /** UTF-8 bytes the token decodes to (empty for control tokens); throws for a bad id */
  bytesOf(id: number): Uint8Array;
  readonly bos: number;
  readonly addSpacePrefix: boolean;
}

export interface StreamDecoder {
  /** The text that `id` completes (possibly ''). */
  push(id: number): string;
  /** The rest: bytes of an unfinished character, as U+FFFD. The decoder can then be reused. */
  flush(): string;
}

export interface StreamDecoderOptions {
  /**
   * The first token pushed starts the text, so the space of the dummy prefix is removed from
   * it. Default false: a stream usually continues a prompt, where a leading space is real text.
   * Either way, the first text token right after a BOS loses its leading space.
   */
  readonly atStart?: boolean;
}

export function createStreamDecoder(t: PieceBytes, opts: StreamDecoderOptions = {}): StreamDecoder {
  let decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  // Armed while the next text token starts the text (at the start, or right after BOS).
  let stripSpace = t.addSpacePrefix && (opts.atStart ?? false);
  return {
    push(id: number): string {
      let bytes = t.bytesOf(id);
      if (id === t.bos) {
        stripSpace = t.addSpacePrefix;
        return '';
      }
      if (bytes.length === 0) return '';
      if (stripSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
      stripSpace = false;
      return decoder.decode(bytes, { stream: true });
    },
    flush(): string {
      const rest = decoder.decode();
      decoder = new TextDecoder('utf-8', { ignoreBOM: true });
      return rest;
    },
  };
}
