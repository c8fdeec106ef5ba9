/**
 * TensorBoard event files, written without TensorFlow: a TFRecord file of serialized `Event`
 * protocol buffers, encoded by hand.
 *
 * A record: uint64 LE length · uint32 LE masked crc32c of those 8 bytes · the data · uint32 LE
 * masked crc32c of the data, where mask(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32).
 * The first Event of a file carries file_version "brain.Event:2"; then one Event per step with a
 * Summary of scalar values. Field numbers, as in TensorBoard's tensorboard/compat/proto/event.proto
 * and summary.proto (the same as TensorFlow's tensorflow/core/util/event.proto and
 * tensorflow/core/framework/summary.proto):
 *
 *   Event      1 wall_time double · 2 step int64 · 3 file_version string · 5 summary Summary
 *              · 7 session_log SessionLog · 10 source_metadata SourceMetadata
 *   Summary    1 value repeated Value
 *   Value      1 tag string · 2 simple_value float
 *   SessionLog 1 status enum (START = 1)
 *   SourceMetadata 1 writer string
 *
 * The file is append-only and each record goes to the OS in one write as it is made, so a crash
 * of the process loses nothing written and at worst leaves the record being written cut short
 * (TensorBoard stops reading at a torn record). A resumed run starts a new file with a
 * SessionLog START at its first step (`resumeAfter`): TensorBoard's event accumulator then drops
 * what earlier files logged at that step and after — what the interrupted run logged past its
 * checkpoint — and keeps every earlier step (it keeps events whose step < the START's).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { InternalError, KilnError } from '../../graph/errors.js';
import { AppendFile, writeProblem } from '../formats/file.js';

// ─── crc32c (Castagnoli) ────────────────────────────────────────────────────────────────────

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1; // 0x1EDC6F41 reflected
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data`, continuing from `crc` (the CRC of what came before, 0 at the start). */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** TFRecord's masked CRC: rotated right by 15 bits, plus a constant, so a CRC of CRCs is not degenerate. */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, its masked CRC, the data, the data's masked CRC. */
export function encodeRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ─── a protobuf encoder for the few field kinds an Event needs ──────────────────────────────

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;
const utf8 = new TextEncoder();

class Message {
  private readonly bytes: number[] = [];

  private varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new InternalError(`protobuf varint ${n}`);
    for (; n >= 0x80; n = Math.floor(n / 0x80)) this.bytes.push((n % 0x80) | 0x80);
    this.bytes.push(n);
  }
  private key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }
  uint(field: number, n: number): this {
    this.key(field, WIRE_VARINT);
    this.varint(n);
    return this;
  }
  double(field: number, x: number): this {
    this.key(field, WIRE_FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, true);
    this.bytes.push(...b);
    return this;
  }
  float(field: number, x: number): this {
    this.key(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.bytes.push(...b);
    return this;
  }
  raw(field: number, data: Uint8Array): this {
    this.key(field, WIRE_BYTES);
    this.varint(data.length);
    for (const x of data) this.bytes.push(x);
    return this;
  }
  string(field: number, s: string): this {
    return this.raw(field, utf8.encode(s));
  }
  message(field: number, m: Message): this {
    return this.raw(field, m.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

// Field numbers (see the header).
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5, sessionLog: 7, sourceMetadata: 10 } as const;
const SUMMARY = { value: 1 } as const;
const VALUE = { tag: 1, simpleValue: 2 } as const;
const SESSION_LOG = { status: 1, START: 1 } as const;
const SOURCE_METADATA = { writer: 1 } as const;

export const FILE_VERSION = 'brain.Event:2';

/** An Event's common fields: wall time, and the step unless it is 0 (proto3 leaves defaults out). */
function event(wallTime: number, step: number): Message {
  if (!Number.isSafeInteger(step) || step < 0) throw new InternalError(`event step ${step}`);
  const e = new Message().double(EVENT.wallTime, wallTime);
  return step === 0 ? e : e.uint(EVENT.step, step);
}

/** The file's first Event: its version, and who wrote it. */
export function fileVersionEvent(wallTime: number): Uint8Array {
  return event(wallTime, 0).string(EVENT.fileVersion, FILE_VERSION).message(EVENT.sourceMetadata, new Message().string(SOURCE_METADATA.writer, 'kiln')).finish();
}

/** An Event with one Summary holding each (tag, value) as a float simple_value. */
export function scalarsEvent(wallTime: number, step: number, values: Readonly<Record<string, number>>): Uint8Array {
  const summary = new Message();
  for (const [tag, x] of Object.entries(values)) summary.message(SUMMARY.value, new Message().string(VALUE.tag, tag).float(VALUE.simpleValue, x));
  return event(wallTime, step).message(EVENT.summary, summary).finish();
}

/** SessionLog START at `step`: TensorBoard forgets what earlier files logged at this step and after. */
export function sessionStartEvent(wallTime: number, step: number): Uint8Array {
  return event(wallTime, step).message(EVENT.sessionLog, new Message().uint(SESSION_LOG.status, SESSION_LOG.START)).finish();
}

// ─── the writer ─────────────────────────────────────────────────────────────────────────────

/** `events.out.tfevents.<seconds>.<host>`, the name TensorBoard looks for (any name with "tfevents"). */
export function eventFileName(seconds: number, host: string): string {
  return `events.out.tfevents.${Math.floor(seconds)}.${host.replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost'}`;
}

export interface EventWriterOptions {
  /** the host in the file name; os.hostname() unless given */
  host?: string;
  /** the clock, in seconds since the epoch (Date.now() / 1000 unless given; tests fix it) */
  now?: () => number;
}

export class EventWriter {
  private readonly now: () => number;

  private constructor(
    private readonly file: AppendFile,
    now: () => number,
  ) {
    this.now = now;
  }

  get path(): string {
    return this.file.path;
  }

  /** A new event file in folder `dir` (which must exist), its version record written. */
  static create(dir: string, opts: EventWriterOptions = {}): EventWriter {
    const now = opts.now ?? (() => Date.now() / 1000);
    const t = now();
    const base = join(dir, eventFileName(t, opts.host ?? hostname()));
    // Exclusive creation: a second writer in the same second gets a suffix, never the same file.
    for (let n = 0; ; n++) {
      const path = n === 0 ? base : `${base}.${n}`;
      let file: AppendFile;
      try {
        file = AppendFile.open(path, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST' && n < 100) continue;
        if (e instanceof KilnError) throw e;
        throw new KilnError('K1016', `cannot write '${path}': ${writeProblem(path, e)}`);
      }
      const w = new EventWriter(file, now);
      w.append(fileVersionEvent(t));
      return w;
    }
  }

  /** Scalars of one step, in one Event (tags such as 'train/loss'). */
  scalars(step: number, values: Readonly<Record<string, number>>, wallTime = this.now()): void {
    this.append(scalarsEvent(wallTime, step, values));
  }

  scalar(tag: string, value: number, step: number, wallTime = this.now()): void {
    this.scalars(step, { [tag]: value }, wallTime);
  }

  /** A SessionLog START at `step`: TensorBoard forgets what earlier files logged at `step` and after. */
  sessionStart(step: number, wallTime = this.now()): void {
    this.append(sessionStartEvent(wallTime, step));
  }

  /** Mark a run resumed from a checkpoint taken after step `lastStep` (as MetricsLog.resume takes it): START at lastStep + 1. */
  resumeAfter(lastStep: number, wallTime = this.now()): void {
    this.sessionStart(lastStep + 1, wallTime);
  }

  private append(data: Uint8Array): void {
    this.file.append(encodeRecord(data));
  }

  close(): void {
    this.file.close();
  }
}
