/**
 * Training data: files → one stream of token ids → windows of `seq + 1` tokens → batches.
 *
 * Files, by extension:
 *   .txt    the whole file is one document;
 *   .jsonl  one JSON object per line, its `text` string a document (blank lines are skipped);
 *   .json   one array of token ids, already made (used as it is).
 * Every text document is cleaned as asked (`cleanText`), tokenized by the caller's callback and
 * put in the stream after a BOS, so BOS stands between documents and the stream starts as a
 * prompt does. Any problem is one K1023 line naming the file (and the line or the element).
 *
 * Windows: for seq T, window w of a stream of n ids is ids[w·T, w·T + T + 1): T inputs and their
 * T next-token targets, so consecutive windows share one token and there are ⌊(n − 1)/T⌋.
 * The validation windows are a seeded choice of a fraction of them (or all the windows of a
 * separate file). Training order, row b of step s (k = s·B + b rows drawn before it, count the
 * training windows, e = ⌊k / count⌋ the epoch): window k mod count without shuffling, or the
 * (k mod count)-th of epoch e's permutation, which is a pure function of (seed, e). A cursor's
 * state is therefore its position alone (plus what checks that it belongs to this data): plain
 * JSON that restores exactly.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { InternalError, KilnError } from '../../graph/errors.js';

// ─── errors and small helpers ───────────────────────────────────────────────────────────────

/** A one-line K1023 'unusable training data' error about `file`. */
function unusable(file: string, msg: string): KilnError {
  return new KilnError('K1023', `${file}: ${msg}`.replace(/[\r\n]+/g, ' '));
}

const commas = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** A growing Int32Array. */
class IdBuffer {
  private a = new Int32Array(1 << 16);
  length = 0;
  push(id: number): void {
    if (this.length === this.a.length) this.grow(this.length + 1);
    this.a[this.length++] = id;
  }
  pushAll(ids: ArrayLike<number>): void {
    if (this.length + ids.length > this.a.length) this.grow(this.length + ids.length);
    for (let i = 0; i < ids.length; i++) this.a[this.length++] = ids[i]!;
  }
  private grow(need: number): void {
    let size = this.a.length;
    while (size < need) size *= 2;
    const b = new Int32Array(size);
    b.set(this.a.subarray(0, this.length));
    this.a = b;
  }
  result(): Int32Array {
    return this.a.slice(0, this.length);
  }
}

// ─── cleaning ───────────────────────────────────────────────────────────────────────────────

export interface CleanOptions {
  /** remove HTML tags, comments, scripts and styles; block tags become line breaks; entities decoded */
  stripHtml?: boolean;
  /** CRLF → LF, runs of spaces and tabs → one space, lines trimmed, 3+ newlines → 2, text trimmed */
  normalizeWhitespace?: boolean;
}

const BLOCK_TAG = /^(p|div|br|li|ul|ol|h[1-6]|tr|table|section|article|blockquote|pre|hr)$/i;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function stripHtml(t: string): string {
  return t
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<![^>]*>/g, '') // <!DOCTYPE …>
    .replace(/<\/?([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>/g, (_, name: string) => (BLOCK_TAG.test(name) ? '\n' : ''))
    .replace(/&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);/g, (all, e: string) => {
      if (e[0] !== '#') return ENTITIES[e.toLowerCase()] ?? all;
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : all;
    });
}

function normalizeWhitespace(t: string): string {
  return t
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t\f\v\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** A document's text as the user asked it cleaned: HTML first, then whitespace. */
export function cleanText(text: string, opts: CleanOptions = {}): string {
  let t = text;
  if (opts.stripHtml) t = stripHtml(t);
  if (opts.normalizeWhitespace) t = normalizeWhitespace(t);
  return t;
}

// ─── reading files ──────────────────────────────────────────────────────────────────────────

export interface ReadOptions {
  /** token ids of a document's text, without BOS (e.g. `(t) => tok.encode(t, { bos: false })`) */
  tokenize: (text: string) => number[];
  /** the id put before every text document */
  bos: number;
  /** ids must lie in [0, vocabSize) */
  vocabSize: number;
  clean?: CleanOptions;
}

export interface FileSummary {
  readonly path: string;
  /** ids this file put in the stream, BOS included */
  readonly tokens: number;
  /** text documents (a .json file of ids counts as one) */
  readonly documents: number;
}

export interface TokenStream {
  readonly ids: Int32Array;
  readonly files: readonly FileSummary[];
}

/** Longest text one JS string holds (V8: 2^29 − 24 UTF-16 units); a byte is at least one unit. */
const MAX_TEXT_BYTES = (1 << 29) - 24;
const utf8 = new TextDecoder('utf-8', { fatal: true }); // strips a leading byte-order mark

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = { ENOENT: 'no such file', EISDIR: 'it is a folder, not a file', EACCES: 'permission denied', EPERM: 'permission denied' }[code ?? ''];
    throw unusable(path, `cannot read: ${why ?? code ?? String(e)}`);
  }
}

/** The offset of the first byte in bytes[from, to) that does not start a valid UTF-8 sequence. */
function firstBadUtf8(b: Uint8Array, from: number, to: number): number {
  for (let i = from; i < to; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= to) return i; // invalid lead byte, or the sequence runs past the end
    // the second byte's range excludes overlong forms, surrogates and code points past U+10FFFF
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    if (b[i + 1]! < lo || b[i + 1]! > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

const lineOf = (b: Uint8Array, offset: number): number => {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 10) line++;
  return line;
};

/** bytes[from, to) as text, or a K1023 naming the byte (and its line) that is not UTF-8 text. */
function decodeText(path: string, b: Uint8Array, from: number, to: number): string {
  const nul = b.subarray(from, to).indexOf(0);
  if (nul >= 0) throw unusable(path, `a binary file, not text (a NUL byte at offset ${from + nul}, line ${lineOf(b, from + nul)})`);
  try {
    return utf8.decode(b.subarray(from, to));
  } catch {
    const at = firstBadUtf8(b, from, to);
    const hex = at >= 0 ? `0x${b[at]!.toString(16).padStart(2, '0')}` : '?';
    throw unusable(path, `not UTF-8 text (byte ${hex} at offset ${at}, line ${lineOf(b, Math.max(at, 0))})`);
  }
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/**
 * Appends one document: BOS, then the tokens of its cleaned text. Returns false when the text
 * is empty after cleaning (nothing is added).
 */
function addDocument(out: IdBuffer, text: string, opts: ReadOptions, where: () => string): boolean {
  const clean = cleanText(text, opts.clean);
  if (clean.length === 0) return false;
  const ids = opts.tokenize(clean);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= opts.vocabSize)
      throw new KilnError('K1023', `${where()}: the tokenizer gave id ${id}, outside the vocabulary [0, ${opts.vocabSize})`);
  }
  out.push(opts.bos);
  out.pushAll(ids);
  return true;
}

function readTxt(path: string, b: Uint8Array, out: IdBuffer, opts: ReadOptions): number {
  if (b.length > MAX_TEXT_BYTES) throw unusable(path, `${commas(b.length)} bytes is more text than one JavaScript string holds; split it into files, or use .jsonl`);
  const text = decodeText(path, b, 0, b.length);
  if (!addDocument(out, text, opts, () => path)) throw unusable(path, opts.clean?.stripHtml || opts.clean?.normalizeWhitespace ? 'no text left after cleaning' : 'no text');
  return 1;
}

function readJsonl(path: string, b: Uint8Array, out: IdBuffer, opts: ReadOptions): number {
  let docs = 0;
  for (let pos = 0, line = 1; pos < b.length; line++) {
    const nl = b.indexOf(10, pos);
    const end = nl < 0 ? b.length : nl;
    const src = decodeText(path, b, pos, end).trim();
    pos = end + 1;
    if (src.length === 0) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(src);
    } catch (e) {
      throw unusable(path, `line ${line} is not JSON (${(e as Error).message})`);
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) throw unusable(path, `line ${line} is ${typeName(rec)}, not a JSON object with a "text" string`);
    const text = (rec as Record<string, unknown>)['text'];
    if (text === undefined) throw unusable(path, `line ${line} has no "text" field`);
    if (typeof text !== 'string') throw unusable(path, `line ${line}: "text" is ${typeName(text)}, not a string`);
    if (addDocument(out, text, opts, () => `${path}: line ${line}`)) docs++;
  }
  if (docs === 0) throw unusable(path, 'no line with any text');
  return docs;
}

function readIds(path: string, b: Uint8Array, out: IdBuffer, opts: ReadOptions): number {
  let v: unknown;
  try {
    v = JSON.parse(decodeText(path, b, 0, b.length));
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw unusable(path, `not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v)) throw unusable(path, `holds ${typeName(v)}; a .json training file is one array of token ids`);
  if (v.length === 0) throw unusable(path, 'the array of token ids is empty');
  for (let i = 0; i < v.length; i++) {
    const id: unknown = v[i];
    if (typeof id !== 'number' || !Number.isInteger(id)) throw unusable(path, `element ${i} is ${typeof id === 'number' ? id : typeName(id)}, not a whole-number token id`);
    if (id < 0 || id >= opts.vocabSize) throw unusable(path, `element ${i} is ${id}, outside the vocabulary [0, ${opts.vocabSize})`);
  }
  out.pushAll(v as number[]);
  return 1;
}

const READERS: Record<string, (path: string, b: Uint8Array, out: IdBuffer, opts: ReadOptions) => number> = {
  '.jsonl': readJsonl,
  '.json': readIds,
};

/** Reads and tokenizes every file, in order, into one stream. */
export function readTokens(paths: readonly string[], opts: ReadOptions): TokenStream {
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < 1) throw new InternalError(`readTokens: vocabSize ${opts.vocabSize}`);
  if (!Number.isInteger(opts.bos) || opts.bos < 0 || opts.bos >= opts.vocabSize) throw new InternalError(`readTokens: bos ${opts.bos} outside [0, ${opts.vocabSize})`);
  if (paths.length === 0) throw new KilnError('K1023', 'no training data files were given');
  const out = new IdBuffer();
  const files: FileSummary[] = [];
  for (const path of paths) {
    // any other name is plain text (.txt, .md, a README): a binary file is refused by its bytes
    const read = READERS[extname(path).toLowerCase()] ?? readTxt;
    const bytes = readBytes(path);
    if (bytes.length === 0) throw unusable(path, 'the file is empty');
    const before = out.length;
    const documents = read(path, bytes, out, opts);
    files.push({ path, tokens: out.length - before, documents });
  }
  return { ids: out.result(), files };
}

// ─── a seeded generator whose state is four integers ────────────────────────────────────────

/** murmur3's 32-bit finaliser: a bijection of u32 that mixes every bit into every other. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export type RngState = [number, number, number, number];

/**
 * xoshiro128** (Blackman and Vigna): four u32 words of state, period 2^128 − 1. Seeded from a
 * seed and a stream number through fmix32 over a Weyl sequence, so (seed, stream) pairs give
 * unrelated sequences. `state()` and `Rng.fromState` save and restore it exactly.
 */
export class Rng {
  private s: Uint32Array;
  private constructor(s: Uint32Array) {
    this.s = s;
  }

  /** `seed`: a whole number in [0, 2^53); `stream` tells apart the generators drawn from one seed. */
  static seeded(seed: number, stream = 0): Rng {
    checkSeed(seed);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    let x = fmix32(lo ^ fmix32(hi ^ fmix32(stream >>> 0)));
    const s = new Uint32Array(4);
    for (let i = 0; i < 4; i++) s[i] = fmix32((x = (x + 0x9e3779b9) >>> 0));
    if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1; // the one state xoshiro cannot leave
    return new Rng(s);
  }

  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || !state.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32) || state.every((w) => w === 0))
      throw new KilnError('K1025', `random generator state ${JSON.stringify(state)} is not four 32-bit words, not all zero`);
    return new Rng(Uint32Array.from(state));
  }

  state(): RngState {
    return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!];
  }

  /** A uniform u32. */
  u32(): number {
    const s = this.s;
    const [s0, s1, s2, s3] = [s[0]!, s[1]!, s[2]!, s[3]!];
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t2 = s2 ^ s0;
    const t3 = s3 ^ s1;
    s[0] = s0 ^ t3;
    s[1] = s1 ^ t2;
    s[2] = t2 ^ (s1 << 9);
    s[3] = rotl(t3, 11);
    return r;
  }

  /** A uniform integer in [0, n), n ≤ 2^32, without modulo bias (rejection). */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new InternalError(`Rng.below(${n})`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % n;
    }
  }

  /** A uniform float in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.u32() >>> 5) * 2 ** 26 + (this.u32() >>> 6)) / 2 ** 53;
  }
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new KilnError('K1016', `--seed (${seed}) must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
}

/** A uniformly random permutation of 0…n−1 (Fisher–Yates, from the top). */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Generator streams, one per use of the seed. */
const STREAM_VAL_SPLIT = 1;
const STREAM_EPOCH = 2; // + the epoch number · 2, so no two epochs (or the split) share a stream

// ─── windows ────────────────────────────────────────────────────────────────────────────────

export interface Batch {
  /** one row per window: seq input ids */
  inputs: Int32Array[];
  /** the next-token ids of the same rows */
  targets: Int32Array[];
}

/** How many windows of seq + 1 tokens (sharing one token) a stream of `tokens` ids holds. */
export const windowCount = (tokens: number, seq: number): number => (tokens < 1 ? 0 : Math.floor((tokens - 1) / seq));

/** Some of the windows of one id stream: window i of the set is stream window `which[i]`. */
export class Windows {
  constructor(
    readonly ids: Int32Array,
    readonly seq: number,
    readonly which: Int32Array,
  ) {}

  get count(): number {
    return this.which.length;
  }

  /** The set's window i as fresh arrays: ids[w·T, w·T + T) and ids[w·T + 1, w·T + T + 1). */
  row(i: number): { input: Int32Array; target: Int32Array } {
    const w = this.which[i];
    if (w === undefined) throw new InternalError(`window ${i} of ${this.count}`);
    const at = w * this.seq;
    return { input: this.ids.slice(at, at + this.seq), target: this.ids.slice(at + 1, at + this.seq + 1) };
  }

  rows(indices: ArrayLike<number>): Batch {
    const b: Batch = { inputs: [], targets: [] };
    for (let k = 0; k < indices.length; k++) {
      const { input, target } = this.row(indices[k]!);
      b.inputs.push(input);
      b.targets.push(target);
    }
    return b;
  }

  /** Every window in order, `batch` rows at a time (the last batch may have fewer), at most `limit` batches. */
  *batches(batch: number, limit = Infinity): Generator<Batch> {
    checkBatch(batch);
    for (let from = 0, n = 0; from < this.count && n < limit; from += batch, n++) {
      const idx: number[] = [];
      for (let i = from; i < Math.min(from + batch, this.count); i++) idx.push(i);
      yield this.rows(idx);
    }
  }
}

function checkBatch(batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) throw new KilnError('K1016', `--batch (${batch}) must be a whole number ≥ 1`);
}

// ─── the split ──────────────────────────────────────────────────────────────────────────────

export interface SplitOptions {
  seq: number;
  /** the fraction of windows held out for validation, in [0, 1); 0.1 unless given; ignored with `val` */
  valFraction?: number;
  /** chooses the held-out windows (0 unless given) */
  seed?: number;
  /** a separate validation stream (all its windows are used); `valName` names it in errors */
  val?: Int32Array;
  valName?: string;
}

export interface TrainingData {
  readonly seq: number;
  readonly train: Windows;
  /** undefined when there is none (valFraction 0, or a stream of one window) */
  readonly val: Windows | undefined;
  /** ids in the training stream (held-out windows included when split from it) */
  readonly tokens: number;
  /** ids in the separate validation stream, or 0 */
  readonly valTokens: number;
}

function tooShort(what: string, tokens: number, seq: number): KilnError {
  return new KilnError('K1023', `${what} has ${commas(tokens)} token${tokens === 1 ? '' : 's'}; one window of --seq ${seq} needs ${commas(seq + 1)}`);
}

const allWindows = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/**
 * The training and validation windows. Held out from one stream: round(count · valFraction)
 * windows, at least 1 when the fraction is above 0 and there are 2 or more, and never all of
 * them, chosen by a seeded permutation and kept in stream order.
 */
export function splitData(ids: Int32Array, opts: SplitOptions): TrainingData {
  const { seq } = opts;
  if (!Number.isInteger(seq) || seq < 1) throw new KilnError('K1016', `--seq (${seq}) must be a whole number ≥ 1`);
  const count = windowCount(ids.length, seq);
  if (count < 1) throw tooShort('the training data', ids.length, seq);

  if (opts.val !== undefined) {
    const valCount = windowCount(opts.val.length, seq);
    if (valCount < 1) throw tooShort(`the validation data${opts.valName ? ` (${opts.valName})` : ''}`, opts.val.length, seq);
    return { seq, train: new Windows(ids, seq, allWindows(count)), val: new Windows(opts.val, seq, allWindows(valCount)), tokens: ids.length, valTokens: opts.val.length };
  }

  const frac = opts.valFraction ?? 0.1;
  if (typeof frac !== 'number' || !(frac >= 0 && frac < 1)) throw new KilnError('K1016', `--val-fraction (${frac}) must be at least 0 and less than 1`);
  const seed = opts.seed ?? 0;
  checkSeed(seed);
  const nVal = frac === 0 || count < 2 ? 0 : Math.min(count - 1, Math.max(1, Math.round(count * frac)));
  if (nVal === 0) return { seq, train: new Windows(ids, seq, allWindows(count)), val: undefined, tokens: ids.length, valTokens: 0 };
  const perm = permutation(count, Rng.seeded(seed, STREAM_VAL_SPLIT));
  const val = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  return { seq, train: new Windows(ids, seq, train), val: new Windows(ids, seq, val), tokens: ids.length, valTokens: 0 };
}

/** One line for the user: tokens, and windows in train and validation. */
export function describeData(d: TrainingData, files?: readonly FileSummary[]): string {
  const from = files ? ` from ${files.length} file${files.length === 1 ? '' : 's'}` : '';
  const val = d.val === undefined ? 'no validation windows' : `${commas(d.val.count)} validation window${d.val.count === 1 ? '' : 's'}${d.valTokens ? ` (${commas(d.valTokens)} tokens of their own)` : ''}`;
  return `${commas(d.tokens)} tokens${from}: ${commas(d.train.count)} training window${d.train.count === 1 ? '' : 's'} and ${val} of ${d.seq} + 1 tokens`;
}

// ─── the training cursor ────────────────────────────────────────────────────────────────────

export interface CursorState {
  readonly kind: 'kiln.data-cursor';
  /** rows drawn so far: the next row is row `position` of the whole run */
  readonly position: number;
  readonly shuffle: boolean;
  readonly seed: number;
  /** the training windows' count, to refuse a state saved over other data */
  readonly windows: number;
}

export interface CursorOptions {
  shuffle?: boolean;
  seed?: number;
}

/** The order of the training windows, batch by batch; its state is plain JSON. */
export class DataCursor {
  readonly shuffle: boolean;
  readonly seed: number;
  private pos = 0;
  private permEpoch = -1;
  private perm: Int32Array | undefined;

  constructor(
    readonly windows: Windows,
    opts: CursorOptions = {},
  ) {
    this.shuffle = opts.shuffle ?? false;
    this.seed = opts.seed ?? 0;
    checkSeed(this.seed);
    if (windows.count < 1) throw new InternalError('DataCursor over no windows');
  }

  /** rows drawn so far */
  get position(): number {
    return this.pos;
  }

  /** the epoch the next row belongs to (from 0) */
  get epoch(): number {
    return Math.floor(this.pos / this.windows.count);
  }

  /** The set's window index for row k of the run. */
  private windowAt(k: number): number {
    const count = this.windows.count;
    const i = k % count;
    if (!this.shuffle) return i;
    const e = Math.floor(k / count);
    if (e !== this.permEpoch) {
      this.perm = permutation(count, Rng.seeded(this.seed, STREAM_EPOCH + 2 * e));
      this.permEpoch = e;
    }
    return this.perm![i]!;
  }

  /** The next `batch` rows. */
  next(batch: number): Batch {
    checkBatch(batch);
    const idx: number[] = [];
    for (let b = 0; b < batch; b++) idx.push(this.windowAt(this.pos + b));
    this.pos += batch;
    return this.windows.rows(idx);
  }

  state(): CursorState {
    return { kind: 'kiln.data-cursor', position: this.pos, shuffle: this.shuffle, seed: this.seed, windows: this.windows.count };
  }

  /** Continue from a saved state; a state from other data or other options is a K1025. */
  restore(s: CursorState): void {
    const bad = (msg: string): KilnError => new KilnError('K1025', `the checkpoint's data position ${msg}`);
    if (typeof s !== 'object' || s === null || s.kind !== 'kiln.data-cursor') throw bad('is not a kiln data cursor state');
    if (!Number.isSafeInteger(s.position) || s.position < 0) throw bad(`(${s.position}) is not a whole number ≥ 0`);
    if (s.windows !== this.windows.count) throw bad(`was saved over ${commas(s.windows)} training windows; this data has ${commas(this.windows.count)}`);
    if (s.shuffle !== this.shuffle) throw bad(`was saved ${s.shuffle ? 'with' : 'without'} shuffling; this run is ${this.shuffle ? 'with' : 'without'}`);
    if (s.seed !== this.seed) throw bad(`was saved with seed ${s.seed}; this run has seed ${this.seed}`);
    this.pos = s.position;
  }
}
