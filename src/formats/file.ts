/**
 * Reading checkpoint files. Node has no mmap, so a file is opened once and read with positional
 * reads: the header through a small sliding window (`Cursor`), then each tensor into its own
 * buffer. Memory then holds each stored byte once (plus the dequantised copy a caller asks for),
 * never the whole file as one Buffer — which would also fail past Node's Buffer size limit for
 * a 7B-parameter file — and never as a string.
 *
 * Every problem with the bytes is a one-line K1021 error that starts with the file's name.
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { KilnError } from '../../graph/errors.js';

/** A K1021 'malformed checkpoint' error about `file`; the message is kept to one line. */
export function malformed(file: string, msg: string): KilnError {
  return new KilnError('K1021', `${file}: ${msg}`.replace(/[\r\n]+/g, ' '));
}

/** A name or key out of a file, quoted and cut short so that a corrupt one stays readable. */
export function quote(s: string): string {
  const j = JSON.stringify(String(s));
  return j.length > 80 ? `${j.slice(0, 76)}…"` : j;
}

export class FileSource {
  private fd: number | undefined;
  private constructor(
    readonly path: string,
    fd: number,
    readonly size: number,
  ) {
    this.fd = fd;
  }

  static open(path: string): FileSource {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw malformed(path, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      closeSync(fd);
      throw malformed(path, 'not a regular file');
    }
    return new FileSource(path, fd, st.size);
  }

  /** `length` bytes from `offset` into a fresh buffer; `what` names them if the file is too short. */
  read(offset: number, length: number, what: string): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw malformed(this.path, `${what} needs bytes ${offset}..${offset + length} but the file has ${this.size} (truncated?)`);
    if (this.fd === undefined) throw new Error(`FileSource: ${this.path} is closed`);
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n <= 0) throw malformed(this.path, `${what}: read stopped at byte ${offset + done} (file changed while reading?)`);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

const WINDOW = 1 << 20;

/**
 * A little-endian reader over a FileSource through a sliding window. `ctx` says what is being
 * read (a metadata key, a tensor info), so a truncation error can name it.
 */
export class Cursor {
  ctx = 'the header';
  private buf: Uint8Array = new Uint8Array(0);
  private dv = new DataView(this.buf.buffer);
  private start = 0;
  constructor(
    readonly src: FileSource,
    public pos = 0,
  ) {}

  get remaining(): number {
    return this.src.size - this.pos;
  }

  private need(n: number): number {
    if (n > this.remaining)
      throw malformed(this.src.path, `file ends at byte ${this.src.size} inside ${this.ctx} (needs ${n} bytes at ${this.pos}; truncated?)`);
    if (this.pos < this.start || this.pos + n > this.start + this.buf.length) {
      this.start = this.pos;
      this.buf = this.src.read(this.pos, Math.min(Math.max(n, WINDOW), this.remaining), this.ctx);
      this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }

  u8(): number {
    const at = this.need(1); // before reading this.dv: need() may replace it
    return this.dv.getUint8(at);
  }
  i8(): number {
    const at = this.need(1); // before reading this.dv: need() may replace it
    return this.dv.getInt8(at);
  }
  u16(): number {
    const at = this.need(2); // before reading this.dv: need() may replace it
    return this.dv.getUint16(at, true);
  }
  i16(): number {
    const at = this.need(2); // before reading this.dv: need() may replace it
    return this.dv.getInt16(at, true);
  }
  u32(): number {
    const at = this.need(4); // before reading this.dv: need() may replace it
    return this.dv.getUint32(at, true);
  }
  i32(): number {
    const at = this.need(4); // before reading this.dv: need() may replace it
    return this.dv.getInt32(at, true);
  }
  f32(): number {
    const at = this.need(4); // before reading this.dv: need() may replace it
    return this.dv.getFloat32(at, true);
  }
  f64(): number {
    const at = this.need(8); // before reading this.dv: need() may replace it
    return this.dv.getFloat64(at, true);
  }
  /** A u64 as a number; values past 2^53 cannot be a size or count in any real file. */
  u64(): number {
    const at = this.need(8);
    const v = this.dv.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(this.src.path, `${this.ctx}: value ${v} is too large`);
    return Number(v);
  }
  i64(): number {
    const at = this.need(8);
    const v = this.dv.getBigInt64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(this.src.path, `${this.ctx}: value ${v} is too large`);
    return Number(v);
  }
  bytes(n: number): Uint8Array {
    const at = this.need(n);
    return this.buf.subarray(at, at + n);
  }
}

/** Writes a file's bytes through `put`, in order. */
export type FileWriter = (put: (chunk: Uint8Array) => void) => void;

/**
 * Temporaries being written now. They are removed if the process exits (process.exit, an
 * uncaught error) or is stopped by SIGINT/SIGTERM, which then exits 130/143 as a shell expects.
 * Writes are synchronous, so a signal that arrives during one is handled when it ends: the
 * file is then whole, and no temporary is left.
 */
const live = new Set<string>();
let hooked = false;

/** Remove a file that may not be there (or whose folder may not be: rmSync's force covers only ENOENT). */
function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    /* nothing to remove */
  }
}

function removeLive(): void {
  for (const t of live) removeQuietly(t);
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeLive);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const)
    process.on(sig, () => {
      removeLive();
      if (process.listenerCount(sig) === 1) process.exit(code); // nobody else handles it: stop, as the default would
    });
}

/** Why writing at `path` failed, in words (not the temporary's name that the errno message carries). */
export function writeProblem(path: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const why: Record<string, () => string> = {
    ENOENT: () => (statSync(dirname(path), { throwIfNoEntry: false }) === undefined ? `its folder '${dirname(path)}' does not exist` : 'no file can be created there'),
    ENOTDIR: () => 'a part of the path is a file, not a folder',
    EISDIR: () => 'it is a folder',
    EACCES: () => 'permission denied',
    EPERM: () => 'permission denied',
    EROFS: () => 'the file system is read-only',
    ENOSPC: () => 'the disk is full',
    EDQUOT: () => 'the disk quota is exceeded',
  };
  return code !== undefined && why[code] ? why[code]() : (code ?? (e as Error).message);
}

/** A one-line K1016 error for a failed write to `path`. */
const cannotWrite = (path: string, e: NodeJS.ErrnoException): KilnError => new KilnError('K1016', `cannot write '${path}': ${writeProblem(path, e)}`);

const isErrno = (e: unknown): e is NodeJS.ErrnoException => typeof (e as NodeJS.ErrnoException | undefined)?.code === 'string' && /^E[A-Z]+$/.test((e as NodeJS.ErrnoException).code!);

/**
 * Write files whole or not at all: each goes to a temporary beside it, and the temporaries are
 * renamed over their paths only when every one is written. On a failure the temporaries are
 * removed and the files already there are left as they were. A file-system error is one line
 * (K1016) naming the file that could not be written; other errors (a writer's) pass through.
 */
export function writeFilesAtomic(files: readonly { readonly path: string; readonly write: FileWriter }[]): void {
  hookExit();
  const staged: { path: string; tmp: string }[] = [];
  const created: string[] = [];
  let at = '';
  try {
    for (const f of files) {
      at = f.path;
      const tmp = `${f.path}.tmp-${process.pid}-${Date.now()}`;
      live.add(tmp);
      staged.push({ path: f.path, tmp });
      const fd = openSync(tmp, 'w');
      try {
        f.write((chunk) => {
          for (let done = 0; done < chunk.length; ) done += writeSync(fd, chunk, done, chunk.length - done);
        });
      } finally {
        closeSync(fd);
      }
    }
    // A folder in the way fails the rename; find it before any file is replaced.
    for (const s of staged) {
      at = s.path;
      if (statSync(s.path, { throwIfNoEntry: false })?.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    }
    for (const s of staged) {
      at = s.path;
      const existed = statSync(s.path, { throwIfNoEntry: false }) !== undefined;
      renameSync(s.tmp, s.path);
      live.delete(s.tmp);
      if (!existed) created.push(s.path);
    }
  } catch (e) {
    for (const s of staged) if (live.delete(s.tmp)) removeQuietly(s.tmp);
    for (const p of created) removeQuietly(p); // a rename failed after these were made
    throw isErrno(e) ? cannotWrite(at, e) : e;
  }
}

/**
 * Write a file atomically: `write` appends chunks to a temp file beside `path`, which is renamed
 * over `path` only when every chunk is written, so a crash never leaves half a checkpoint.
 */
export function writeAtomic(path: string, write: FileWriter): void {
  writeFilesAtomic([{ path, write }]);
}

/**
 * A file written by appending, each chunk handed to the OS at once, so a crash loses at most the
 * chunk being written (the training log, the TensorBoard event file). A write error is one line
 * (K1016) naming the file.
 */
export class AppendFile {
  private fd: number | undefined;
  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** `a`: append to what is there (or a new file); `wx`: a new file only, EEXIST thrown as it is. */
  static open(path: string, flags: 'a' | 'wx'): AppendFile {
    try {
      return new AppendFile(path, openSync(path, flags));
    } catch (e) {
      if (flags === 'wx' && (e as NodeJS.ErrnoException).code === 'EEXIST') throw e;
      throw isErrno(e) ? cannotWrite(path, e) : e;
    }
  }

  append(chunk: Uint8Array): void {
    if (this.fd === undefined) throw new Error(`AppendFile: ${this.path} is closed`);
    try {
      for (let done = 0; done < chunk.length; ) done += writeSync(this.fd, chunk, done, chunk.length - done);
    } catch (e) {
      throw isErrno(e) ? cannotWrite(this.path, e) : e;
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
