import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * The CLI's contact with the outside: stdout that survives a closed pipe (`kiln dump | head`),
 * stdin read whole, files written whole or not at all, and a status line shown only to a person
 * watching a terminal.
 */

let stdoutClosed = false;

// A reader that goes away early (`| head`) is not an error of ours: stop writing and exit quietly.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') {
    stdoutClosed = true;
    process.exit(0);
  }
  throw err;
});

/** Write to stdout and wait until the text is handed to the OS, so exiting afterwards loses nothing. */
export function writeStdout(text: string): Promise<void> {
  if (stdoutClosed || text === '') return Promise.resolve();
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') {
        stdoutClosed = true;
        return resolve();
      }
      reject(err);
    });
  });
}

export function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/**
 * Write `data` to `path` atomically: into a temporary file in the same directory (so the rename
 * stays on one file system), flushed, then renamed over the target. A reader sees the old file or
 * the whole new one, never a half-written one.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Run synchronous work with a status line on stderr (`kiln: type-checking model.ts…`), shown only
 * when stderr is a terminal and cleared afterwards; pipes and logs stay clean.
 */
export async function withStatus<T>(label: string, work: () => T | Promise<T>): Promise<T> {
  const tty = process.stderr.isTTY === true;
  if (tty) process.stderr.write(`kiln: ${label}…`);
  try {
    return await work();
  } finally {
    if (tty) process.stderr.write('\r\x1b[K');
  }
}
