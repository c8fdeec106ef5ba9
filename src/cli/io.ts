import { mkdirSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { KilnError } from '../../graph/errors.js';
import { writeAtomic, writeProblem } from '../formats/file.js';

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
 * Write `data` to `path` whole or not at all (formats/file.ts: a temporary beside it, renamed over
 * it once written, removed if the process is stopped first); a failure is one K1016 line.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  writeAtomic(path, (put) => put(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}

/**
 * Create the folder `dir` and its missing parents, one level at a time: mkdir's recursive mode
 * never returns under /proc. A file in the way, or a parent that refuses, is one line (K1016).
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let st;
    try {
      st = statSync(at);
    } catch {
      missing.push(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
      continue;
    }
    if (!st.isDirectory()) throw new KilnError('K1016', `cannot create the folder '${dir}': '${at === resolve(dir) ? dir : relative(process.cwd(), at)}' is a file`);
    break;
  }
  for (const d of missing.reverse())
    try {
      mkdirSync(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && statSync(d).isDirectory()) continue;
      throw new KilnError('K1016', `cannot create the folder '${dir}': ${writeProblem(d, e)}`);
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
